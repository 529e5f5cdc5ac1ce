// Namespaces that many files of this project use, imported once; each file lists only the others it needs.
global using System.Text.Json.Nodes;
global using Vpn.Cli;
global using Vpn.Cli.Client;
global using Vpn.Cli.Output;
