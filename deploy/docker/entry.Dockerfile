# entry: the public and admin HTTP API. Build from the repository root:
#   docker build -f deploy/docker/entry.Dockerfile -t vpn-entry .
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/Vpn.Entry/Vpn.Entry.csproj -c Release -o /out

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /out .
# The image's unprivileged user; entry needs no capability.
USER app
ENV ASPNETCORE_URLS=http://+:8080 \
    APP_ENV=production \
    DOTNET_gcServer=1
EXPOSE 8080
# `dotnet Vpn.Entry.dll migrate` applies migrations and exits (the deployment runs it as an init container).
ENTRYPOINT ["dotnet", "Vpn.Entry.dll"]
