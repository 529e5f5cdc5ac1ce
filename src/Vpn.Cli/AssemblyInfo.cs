// vpnctl writes private keys into files created 0600 (UnixCreateMode) and loads libcrypto.so.3: Linux and other Unix
// only, like the rest of the system. (macOS would need its libcrypto path; not supported yet.)
[assembly: System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
