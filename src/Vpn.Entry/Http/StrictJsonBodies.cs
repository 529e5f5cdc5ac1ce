using System.Text.Json;
using Microsoft.AspNetCore.Http.Metadata;

namespace Vpn.Entry.Http;

/// <summary>
/// Refuses a JSON request body that repeats a property name anywhere in it (400 invalid_request), before the endpoint
/// binds it. Parsers disagree on duplicates (first wins, last wins, error), so a proxy or WAF that checked the first
/// "public_key" or "region" must not let us act on a second one. Names are compared ignoring case, as the binder
/// matches them. The serializer's own AllowDuplicateProperties = false covers the bound properties; this also covers
/// nested and unknown ones, which the serializer skips unread.
/// </summary>
public static class StrictJsonBodies
{
    public const string DuplicateDetail = "The request body repeats a property name; each name may appear once per object.";

    public static IApplicationBuilder UseStrictJsonBodies(this IApplicationBuilder app) =>
        app.Use(async (context, next) =>
        {
            var request = context.Request;
            // Only endpoints that bind a body (minimal APIs mark them with IAcceptsMetadata) and only JSON: others never parse it.
            if (context.GetEndpoint()?.Metadata.GetMetadata<IAcceptsMetadata>() is not null && request.HasJsonContentType())
            {
                var body = await ReadBoundedAsync(request, context.RequestAborted);
                if (HasDuplicateProperty(body))
                {
                    throw ApiProblemException.BadRequest(DuplicateDetail);
                }
                request.Body = new MemoryStream(body, writable: false);
            }
            await next(context);
        });

    /// <summary>
    /// True when some object in <paramref name="json"/> names a property twice (ignoring case, after unescaping).
    /// Malformed JSON is false: the endpoint's binder refuses it with its own invalid_request.
    /// </summary>
    public static bool HasDuplicateProperty(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
        // One set per open object; null for an open array.
        var scopes = new Stack<HashSet<string>?>();
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        scopes.Push(new HashSet<string>(StringComparer.OrdinalIgnoreCase));
                        break;
                    case JsonTokenType.StartArray:
                        scopes.Push(null);
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        scopes.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        if (!scopes.Peek()!.Add(reader.GetString()!))
                        {
                            return true;
                        }
                        break;
                }
            }
        }
        catch (JsonException)
        {
            return false;
        }
        return false;
    }

    // Kestrel enforces the same limit while reading; this also bounds hosts without it (the in-process test server).
    private static async Task<byte[]> ReadBoundedAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > EntryServiceCollectionExtensions.MaxRequestBodyBytes)
            {
                throw new BadHttpRequestException("Request body too large.", StatusCodes.Status413PayloadTooLarge);
            }
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }
}
