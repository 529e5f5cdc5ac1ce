namespace Vpn.Cli.Client; public static class ClientCommands { public static Command Create(GlobalOptions o, CliContext c) => new("client", "x"); }
