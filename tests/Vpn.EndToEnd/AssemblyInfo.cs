// Network namespaces, wireguard-go, nftables: this suite only exists on Linux.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
