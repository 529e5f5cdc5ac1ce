namespace Vpn.Core.WireGuard;

// Messages never carry request or response text: a get response holds the private key and a set
// request holds private and preshared keys.

/// <summary>
/// The device answered with a non-zero <c>errno</c>: it refused (part of) the operation. A set is
/// applied line by line, so the lines before the failing one may already be in effect; re-read the device.
/// </summary>
public sealed class UapiException : IOException
{
    public UapiException(int errno)
        : base($"wireguard UAPI error errno={errno}") => Errno = errno;

    /// <summary>The value as sent by the device; wireguard-go sends negated errno.h codes, e.g. -22 for EINVAL.</summary>
    public int Errno { get; }
}

/// <summary>The response did not follow the UAPI protocol (bad line or value, or it ended early).</summary>
public sealed class UapiProtocolException : IOException
{
    public UapiProtocolException(string message)
        : base(message)
    {
    }
}

/// <summary>
/// The device could not be reached: its socket is missing, refuses connections, or the connection broke.
/// Usually the device (or its wireguard-go process) is gone.
/// </summary>
public sealed class UapiUnavailableException : IOException
{
    public UapiUnavailableException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
