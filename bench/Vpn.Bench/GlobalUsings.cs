// Namespaces that many files of this project use, imported once; each file lists only the others it needs.
global using System.Diagnostics;
global using System.Globalization;
global using System.Net;
global using System.Net.Sockets;
global using Vpn.Harness;
