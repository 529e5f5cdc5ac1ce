// Namespaces that many files of this project use, imported once; each file lists only the others it needs.
global using Vpn.Entry.Auth;
global using Vpn.Entry.Configuration;
global using Vpn.Entry.Http;
global using Vpn.Entry.Http.OpenApi;
global using Vpn.Entry.Sessions;
