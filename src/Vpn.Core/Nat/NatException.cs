namespace Vpn.Core.Nat;

/// <summary>Applying or inspecting NAT failed. <see cref="StandardError"/> is the tool's own diagnostic (it holds no secrets).</summary>
public sealed class NatException : Exception
{
    public NatException()
    {
    }

    public NatException(string message)
        : base(message)
    {
    }

    public NatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public NatException(string message, int? exitCode, string standardError, Exception? innerException = null)
        : base(message, innerException)
    {
        ExitCode = exitCode;
        StandardError = standardError;
    }

    /// <summary>The exit code; null when the process could not be started or timed out.</summary>
    public int? ExitCode { get; }

    public string StandardError { get; } = "";
}
