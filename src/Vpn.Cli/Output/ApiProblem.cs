namespace Vpn.Cli.Output;

/// <summary>
/// An answer of entry that is not a success: status, the problem+json <c>code</c> (or what stood in for one), detail,
/// and the whole body for commands that explain it further (409/503 of session starts).
/// </summary>
public sealed class ApiProblemException(int status, string code, string detail, JsonObject? body)
    : CliException(ExitCodeFor(status), Format(status, code, detail))
{
    public int Status { get; } = status;

    public string Code { get; } = code;

    public string Detail { get; } = detail;

    public JsonObject? Body { get; } = body;

    public static int ExitCodeFor(int status) => status switch
    {
        401 => ExitCodes.Unauthorized,
        >= 500 => ExitCodes.Unavailable,
        _ => ExitCodes.Refused,
    };

    private static string Format(int status, string code, string detail) =>
        $"{status} {code}{(string.IsNullOrWhiteSpace(detail) ? "" : ": " + detail)}";

    /// <summary>Reads a problem+json body (or any other) into the exception; never quotes more than a short line of a non-JSON body.</summary>
    public static ApiProblemException From(HttpStatusCode status, string? contentType, string body)
    {
        JsonObject? json = null;
        try
        {
            json = JsonNode.Parse(body) as JsonObject;
        }
        catch (JsonException)
        {
        }
        var code = json?["code"]?.GetValueKind() == JsonValueKind.String ? json["code"]!.GetValue<string>() : null;
        var detail = json?["detail"]?.GetValueKind() == JsonValueKind.String ? json["detail"]!.GetValue<string>()
            : json?["title"]?.GetValueKind() == JsonValueKind.String ? json["title"]!.GetValue<string>() : null;
        if (code is null)
        {
            code = status switch
            {
                HttpStatusCode.NotFound => "not_found",
                HttpStatusCode.Unauthorized => "unauthorized",
                _ => "http_" + ((int)status).ToString(CultureInfo.InvariantCulture),
            };
            detail ??= contentType is "text/plain" or "text/html" && body.Length > 0 ? OneLine(body) : null;
        }
        return new ApiProblemException((int)status, code, detail ?? "", json);
    }

    private static string OneLine(string text)
    {
        var line = text.Split('\n', 2)[0].Trim();
        return line.Length <= 120 ? line : line[..120] + "…";
    }
}
