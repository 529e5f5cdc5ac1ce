// vpnctl runs on Linux (0600 files by UnixCreateMode, libcrypto): so do its tests.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
