using System.Net;
using System.Text;

namespace Vpn.Core.WireGuard;

/// <summary>Record printing that keeps secret keys out of logs: only whether one is present is shown.</summary>
internal static class KeyRedaction
{
    public const string Marker = "(redacted)";

    public static void AppendList(StringBuilder builder, IReadOnlyList<IPNetwork>? networks)
    {
        if (networks is null)
        {
            builder.Append("null");
            return;
        }
        builder.Append('[');
        for (var i = 0; i < networks.Count; i++)
        {
            builder.Append(i == 0 ? "" : ", ").Append(networks[i].ToString());
        }
        builder.Append(']');
    }
}
