namespace Vpn.Domain.Sessions;

/// <summary>
/// Where a session is in its life: provisioning → active → terminated, or provisioning → failed (a start that could not
/// complete). Provisioning and active are live: they hold the customer's one slot and a unit of their node's capacity.
/// </summary>
public enum SessionState
{
    /// <summary>Claimed (a row exists), the node's core not yet answered; no address yet.</summary>
    Provisioning,

    /// <summary>The tunnel is set up on the node with the session's addresses.</summary>
    Active,

    /// <summary>Ended: by the customer, a replacement, a deleted device or an entitlement change.</summary>
    Terminated,

    /// <summary>A start that was undone (or swept) before it became active.</summary>
    Failed,
}

/// <summary>The one mapping between <see cref="SessionState"/> and its name in the database and the API ("active", …).</summary>
public static class SessionStates
{
    public static string ToName(this SessionState state) => state switch
    {
        SessionState.Provisioning => "provisioning",
        SessionState.Active => "active",
        SessionState.Terminated => "terminated",
        SessionState.Failed => "failed",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, "Not a session state."),
    };

    /// <summary>The state of a stored name; throws for anything else (the database's check constraint allows only these).</summary>
    public static SessionState Parse(string name) => name switch
    {
        "provisioning" => SessionState.Provisioning,
        "active" => SessionState.Active,
        "terminated" => SessionState.Terminated,
        "failed" => SessionState.Failed,
        _ => throw new FormatException($"'{name}' is not a session state."),
    };

    /// <summary>Whether the session holds its customer's slot and a unit of its node's capacity.</summary>
    public static bool IsLive(this SessionState state) => state is SessionState.Provisioning or SessionState.Active;
}
