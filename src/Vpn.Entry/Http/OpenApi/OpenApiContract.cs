using System.ComponentModel.DataAnnotations;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Vpn.Entry.Http.OpenApi;

/// <summary>
/// Makes the generated OpenAPI document say what the service does (docs/api-v1.md): the security schemes and which
/// operations take which, every problem response with its codes (declared by <see cref="ProblemCodes"/> or implied by
/// the endpoint's kind), the <c>Retry-After</c> header of 429/502/503, and exactly the required fields — a request
/// field is required when it is non-nullable or marked <see cref="RequiredAttribute"/>; a response field is required
/// unless it is left out when null.
/// </summary>
public static class OpenApiContract
{
    public const string BearerScheme = "bearer";
    public const string AdminScheme = "adminToken";
    public const string LegacyCustomerScheme = "legacyCustomerHeader";
    private const string ProblemSchema = "Problem";
    private const string ProblemContentType = "application/problem+json";

    /// <summary>The response extension listing the problem codes an operation answers with that status.</summary>
    public const string ProblemCodesExtension = "x-problem-codes";

    // A property marked [Required] (or written even when null); read back by the document transformer.
    private const string RequiredMarker = "x-vpn-required-when-nullable";

    public static IServiceCollection AddEntryOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(options =>
        {
            options.AddSchemaTransformer(MarkRequiredFields);
            options.AddOperationTransformer(DescribeOperation);
            options.AddDocumentTransformer(DescribeDocument);
        });

    private static Task MarkRequiredFields(OpenApiSchema schema, OpenApiSchemaTransformerContext context, CancellationToken ct)
    {
        if (context.JsonPropertyInfo is not null || schema.Properties is not { Count: > 0 } properties)
        {
            return Task.CompletedTask;
        }
        var marked = new JsonArray();
        foreach (var property in context.JsonTypeInfo.Properties)
        {
            var attributes = property.AttributeProvider?.GetCustomAttributes(true) ?? [];
            if (attributes.OfType<JsonIgnoreAttribute>().Any(a => a.Condition is JsonIgnoreCondition.WhenWritingNull or JsonIgnoreCondition.WhenWritingDefault))
            {
                // Left out of the answer when null: never required.
                schema.Required?.Remove(property.Name);
            }
            else if (attributes.OfType<RequiredAttribute>().Any() && properties.ContainsKey(property.Name))
            {
                schema.Required ??= new HashSet<string>(StringComparer.Ordinal);
                schema.Required.Add(property.Name);
                marked.Add(property.Name);
            }
        }
        if (marked.Count > 0)
        {
            schema.Extensions ??= new Dictionary<string, IOpenApiExtension>();
            schema.Extensions[RequiredMarker] = new JsonNodeExtension(marked);
        }
        return Task.CompletedTask;
    }

    private static Task DescribeOperation(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken ct)
    {
        var metadata = context.Description.ActionDescriptor.EndpointMetadata;
        var method = context.Description.HttpMethod ?? "GET";
        var route = EntryOperations.NormalizeRoute(context.Description.RelativePath ?? "");
        var document = context.Document!;
        if (EntryOperations.Find(method, route) is { } known)
        {
            operation.OperationId = known.OperationId;
            operation.Summary = known.Summary;
        }

        if (metadata.OfType<RequiresAdmin>().Any())
        {
            operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(AdminScheme, document)] = [] }];
        }
        else if (metadata.OfType<RequiresCustomer>().Any())
        {
            operation.Security =
            [
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, document)] = [] },
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(LegacyCustomerScheme, document)] = [] },
            ];
        }
        else
        {
            operation.Security = [];
        }

        operation.Responses ??= [];
        foreach (var (status, codes) in ProblemCodesExtensions.ProblemsOf([.. metadata], method, route))
        {
            var key = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var problem = ProblemResponse(status, codes, document);
            if (operation.Responses.TryGetValue(key, out var documented) && documented is OpenApiResponse { Content: { } content } existing
                && content.Keys.Any(type => type != ProblemContentType))
            {
                // A status that is also a documented answer of its own (readiness's 503 report): both bodies.
                content[ProblemContentType] = problem.Content![ProblemContentType];
                existing.Extensions ??= new Dictionary<string, IOpenApiExtension>();
                existing.Extensions[ProblemCodesExtension] = problem.Extensions![ProblemCodesExtension];
                existing.Description = $"{ReasonPhrase(status)}: the application/json body above, or a problem with code {string.Join(", ", codes)}.";
                existing.Headers ??= problem.Headers;
            }
            else
            {
                operation.Responses[key] = problem;
            }
        }

        if (metadata.OfType<IdempotencyKeyHeader>().Any())
        {
            operation.Parameters ??= [];
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = IdempotencyKeyHeader.Name,
                In = ParameterLocation.Header,
                Required = false,
                Description = "Makes a retry safe: the same key and body within 24 h answer the first answer and start nothing; "
                    + "the same key with another body answers 422 idempotency_key_reused. 1-255 printable ASCII characters.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = IdempotencyKeyHeader.MaxLength },
            });
        }
        return Task.CompletedTask;
    }

    // The codes go in the description and in x-problem-codes, not as an enum beside the shared schema: generators turn
    // such an allOf into one subclass per response whose enum hides Problem.code, and a client then reads null.
    private static OpenApiResponse ProblemResponse(int status, IEnumerable<string> codes, OpenApiDocument document)
    {
        var codeList = codes.ToList();
        var response = new OpenApiResponse
        {
            Description = $"{ReasonPhrase(status)}: problem code {string.Join(", ", codeList)}.",
            Content = new Dictionary<string, OpenApiMediaType>
            {
                [ProblemContentType] = new() { Schema = new OpenApiSchemaReference(ProblemSchema, document) },
            },
            Extensions = new Dictionary<string, IOpenApiExtension>
            {
                [ProblemCodesExtension] = new JsonNodeExtension(new JsonArray([.. codeList.Select(c => (JsonNode)c)])),
            },
        };
        if (status is 429 or 502 or 503)
        {
            response.Headers = new Dictionary<string, IOpenApiHeader>
            {
                ["Retry-After"] = new OpenApiHeader
                {
                    Description = "Whole seconds to wait before retrying (the same number as retry_after in the body).",
                    Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "0" },
                },
            };
        }
        return response;
    }

    private static Task DescribeDocument(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken ct)
    {
        document.Info = new OpenApiInfo
        {
            Title = "VPN entry API",
            Version = "v1",
            Description = "The public and admin HTTP API of the VPN control plane. What each endpoint means: docs/api-v1.md. "
                + "Errors are application/problem+json with a stable machine-readable `code`.",
            License = new OpenApiLicense { Name = "Proprietary", Url = new Uri("https://vpn.invalid/license") },
        };
        document.Servers = [new OpenApiServer { Url = "http://127.0.0.1:8080", Description = "The embedded development stack (scripts/dev.sh)" }];
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes = new Dictionary<string, IOpenApiSecurityScheme>
        {
            [BearerScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http, Scheme = "bearer", BearerFormat = "JWT",
                Description = "The access token from POST /v1/auth/oauth/google/callback (HS256 JWT, typ at+jwt).",
            },
            [AdminScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.ApiKey, In = ParameterLocation.Header, Name = "x-admin-token",
                Description = "The operator's ADMIN_API_TOKEN (admin and internal endpoints).",
            },
            [LegacyCustomerScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.ApiKey, In = ParameterLocation.Header, Name = "x-customer-id",
                Description = "Development only: a customer id, accepted while APP_ALLOW_LEGACY_CUSTOMER_HEADER=true (refused in production).",
            },
        };
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        document.Components.Schemas.Remove("ProblemDetails");
        document.Components.Schemas[ProblemSchema] = Problem();
        ReplaceProblemDetailsReferences(document);
        FixRequestRequiredFields(document);
        document.Tags = new HashSet<OpenApiTag>((document.Tags ?? new HashSet<OpenApiTag>()).Select(t => new OpenApiTag { Name = t.Name, Description = TagDescription(t.Name) }));
        return Task.CompletedTask;
    }

    private static OpenApiSchema Problem() => new()
    {
        Type = JsonSchemaType.Object,
        Description = "RFC 9457 problem details with the contract's stable code; some codes carry more members "
            + "(session_conflict: active_session_id; no_nodes_available_in_region: rejected; quota_exceeded: resets_at).",
        Required = new HashSet<string>(StringComparer.Ordinal) { "type", "title", "status", "detail", "code" },
        Properties = new Dictionary<string, IOpenApiSchema>
        {
            ["type"] = new OpenApiSchema { Type = JsonSchemaType.String },
            ["title"] = new OpenApiSchema { Type = JsonSchemaType.String },
            ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32" },
            ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String },
            ["code"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The stable machine-readable error code." },
            ["retry_after"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Integer, Minimum = "0",
                Description = "On 429, 502 and 503: whole seconds to wait, as in the Retry-After header.",
            },
            ["trace_id"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The request's trace id, for support." },
            ["active_session_id"] = new OpenApiSchema { Type = JsonSchemaType.String, Format = "uuid", Description = "On session_conflict." },
            ["resets_at"] = new OpenApiSchema
            {
                Type = JsonSchemaType.String, Format = "date-time",
                Description = "On quota_exceeded: when the billing period ends and the data quota is available again.",
            },
            ["rejected"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Description = "On no_nodes_available_in_region: how many nodes were turned down, by reason.",
                AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.Integer },
            },
        },
    };

    // The framework's ProducesProblem responses point at ProblemDetails; ours replaced it.
    private static void ReplaceProblemDetailsReferences(OpenApiDocument document)
    {
        foreach (var operation in Operations(document))
        {
            foreach (var response in (operation.Responses ?? []).Values.OfType<OpenApiResponse>())
            {
                if (response.Content?.TryGetValue(ProblemContentType, out var media) == true
                    && media.Schema is OpenApiSchemaReference { Reference.Id: "ProblemDetails" })
                {
                    media.Schema = new OpenApiSchemaReference(ProblemSchema, document);
                }
            }
        }
    }

    // A request field is required when non-nullable or marked [Required]; the generator calls every constructor
    // parameter required, even a nullable one the server treats as optional.
    private static void FixRequestRequiredFields(OpenApiDocument document)
    {
        var requestSchemas = Operations(document)
            .SelectMany(o => o.RequestBody?.Content?.Values ?? [])
            .Select(m => m.Schema)
            .SelectMany(s => s is OpenApiSchemaReference ? [s] : s?.OneOf ?? Enumerable.Empty<IOpenApiSchema>())
            .OfType<OpenApiSchemaReference>()
            .Select(r => r.Reference.Id).OfType<string>().ToHashSet(StringComparer.Ordinal);
        foreach (var (name, candidate) in document.Components!.Schemas!)
        {
            if (candidate is not OpenApiSchema schema)
            {
                continue;
            }
            var marked = schema.Extensions?.TryGetValue(RequiredMarker, out var extension) == true && extension is JsonNodeExtension { Node: JsonArray names }
                ? names.Select(n => (string)n!).ToHashSet(StringComparer.Ordinal)
                : [];
            schema.Extensions?.Remove(RequiredMarker);
            if (requestSchemas.Contains(name) && schema.Required is { } required && schema.Properties is { } properties)
            {
                foreach (var field in required.Where(f => !marked.Contains(f) && properties.TryGetValue(f, out var p) && IsNullable(p)).ToList())
                {
                    required.Remove(field);
                }
            }
        }
    }

    private static bool IsNullable(IOpenApiSchema schema) =>
        (schema.Type is { } type && type.HasFlag(JsonSchemaType.Null))
        || (schema.OneOf ?? []).Any(s => s.Type == JsonSchemaType.Null);

    private static IEnumerable<OpenApiOperation> Operations(OpenApiDocument document) =>
        (document.Paths ?? []).Values.SelectMany(p => p.Operations?.Values ?? Enumerable.Empty<OpenApiOperation>());

    private static string ReasonPhrase(int status) => Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status);

    private static string TagDescription(string? tag) => tag switch
    {
        "Auth" => "Sign-in with Google OpenID Connect, logout and the customer's own view.",
        "Devices" => "The customer's devices: WireGuard public keys, within the plan's device limit.",
        "Sessions" => "Exactly one active VPN session per customer: start, reconnect by session key, end.",
        "Nodes" => "The node registry, drains, cores' heartbeats and peer pulls, and core status.",
        "Plans" => "Plans: device limits and regions.",
        "Subscriptions" => "Subscriptions and their history, counts and exports.",
        "Customers" => "Erasure of a customer by an operator.",
        "Privacy" => "Retention windows and redaction in force.",
        "Accounts" => "The customer's own account (erasure).",
        "Service" => "Health, readiness and deployment checks.",
        "Locations" => "The public server list, signed with Ed25519 so an app can detect a tampered or stale one.",
        _ => $"{tag} endpoints.",
    };
}
