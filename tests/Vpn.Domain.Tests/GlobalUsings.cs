// Namespaces that many files of this project use, imported once; each file lists only the others it needs.
global using System.Net;
global using CsCheck;
global using Vpn.Domain.Addressing;
global using Vpn.Domain.WireGuard;
