// Namespaces that many files of this project use, imported once; each file lists only the others it needs.
global using System.Net;
global using System.Net.Sockets;
global using System.Text;
global using Vpn.Core.Configuration;
global using Vpn.Domain.WireGuard;
