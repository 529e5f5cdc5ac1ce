// Namespaces that many files of this project use, imported once; each file lists only the others it needs.
global using System.Diagnostics;
global using System.Globalization;
global using System.Net;
global using System.Security.Cryptography;
global using System.Text;
global using System.Text.Json.Nodes;
global using Vpn.Contracts.Core.V1;
global using Vpn.Harness;
global using Vpn.Harness.Postgres;
