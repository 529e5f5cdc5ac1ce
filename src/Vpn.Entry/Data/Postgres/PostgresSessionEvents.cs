using System.Text.Json;
using Npgsql;

namespace Vpn.Entry.Data.Postgres;

/// <summary>
/// Session events across replicas: one LISTEN connection per replica on <c>session_events</c> (migration 0009's trigger
/// on sessions: a live session superseded, ended or moved, by any replica or by hand), each notification handed to the
/// hub, which fans it out to the customer's open streams here. Reconnects as every listener does
/// (<see cref="PostgresListen"/>: a probe after 15 s without a notification finds a half-open connection; retry every second); since
/// notifications sent while no one listened are lost, every (re)connect asks every open stream to catch up from its
/// session's row (<see cref="GetFateAsync"/>). While the connection is down streams stay open (keep-alives) and learn of
/// changes once it is back.
/// </summary>
public sealed partial class PostgresSessionEvents(NpgsqlDataSource dataSource, SessionEventHub hub, TimeProvider time,
    ILogger<PostgresSessionEvents> logger) : BackgroundService, ISessionEventStore
{
    public const string Channel = "session_events";

    // The told node's drain state decides whether a move found on catch-up was a drain's (gone counts as drained).
    private const string FateColumns = """
        s.id, s.state in ('provisioning', 'active'), s.terminate_reason, coalesce(s.terminated_at, s.updated_at),
        n.id, n.name, n.region, n.country_code, n.city_code, n.pool,
        coalesce((select t.draining from vpn_nodes t where t.id = @told), true)
        """;

    private const string FateSql = $"""
        select {FateColumns} from sessions s left join vpn_nodes n on n.id = s.node_id where s.id = @id and s.customer_id = @customer
        """;

    private const string ActiveFateSql = $"""
        select {FateColumns} from sessions s left join vpn_nodes n on n.id = s.node_id where s.customer_id = @customer and s.state = 'active'
        """;

    public async Task<SessionFate?> GetFateAsync(Guid customerId, Guid? sessionId, Guid toldNodeId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(sessionId is null ? ActiveFateSql : FateSql);
        command.Parameters.AddWithValue("customer", customerId);
        command.Parameters.AddWithValue("told", toldNodeId);
        if (sessionId is { } id)
        {
            command.Parameters.AddWithValue("id", id);
        }
        return await command.ReadFirstOrDefaultAsync(r => new SessionFate(r.GetGuid(0), r.GetBoolean(1), r.IsDBNull(2) ? null : r.GetString(2),
            r.GetFieldValue<DateTimeOffset>(3),
            r.IsDBNull(4) ? null : new SessionEventNode(r.GetGuid(4), r.GetString(5), r.GetString(6), r.IsDBNull(7) ? null : r.GetString(7),
                r.IsDBNull(8) ? null : r.GetString(8), r.IsDBNull(9) ? null : r.GetString(9)),
            r.GetBoolean(10)), cancellationToken);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        PostgresListen.RunAsync(dataSource, Channel, OnNotification, hub.ResyncAll,
            (e, first) =>
            {
                if (first)
                {
                    LogListenFailed(logger, e is PostgresException p ? $"{p.GetType().Name} {p.SqlState}" : e.GetType().Name);
                }
            },
            () => LogListenRecovered(logger), time, stoppingToken);

    private void OnNotification(string payload)
    {
        if (Parse(payload) is { } sessionEvent)
        {
            hub.Publish(sessionEvent);
        }
    }

    /// <summary>The trigger's JSON payload as an event; null when it is not one (never thrown: a listener must not die of a payload).</summary>
    public static SessionEvent? Parse(string payload)
    {
        try
        {
            using var document = JsonDocument.Parse(payload);
            var root = document.RootElement;
            if (!SessionEvent.TryParseKind(root.GetProperty("kind").GetString(), out var kind))
            {
                return null;
            }
            SessionEventNode? node = null;
            if (root.TryGetProperty("node", out var n) && n.ValueKind == JsonValueKind.Object)
            {
                node = new SessionEventNode(n.GetProperty("id").GetGuid(), n.GetProperty("name").GetString()!, n.GetProperty("region").GetString()!,
                    OptionalString(n, "country_code"), OptionalString(n, "city_code"), OptionalString(n, "pool"));
            }
            return new SessionEvent(root.GetProperty("session_id").GetGuid(), root.GetProperty("customer_id").GetGuid(), kind,
                root.GetProperty("reason").GetString() ?? "unknown", root.GetProperty("at").GetDateTimeOffset(), node);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    private static string? OptionalString(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    [LoggerMessage(EventId = 240, Level = LogLevel.Warning, Message = "LISTEN for session events failed ({Reason}); retrying, open streams catch up once it is back")]
    private static partial void LogListenFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 241, Level = LogLevel.Information, Message = "LISTEN for session events recovered")]
    private static partial void LogListenRecovered(ILogger logger);
}
