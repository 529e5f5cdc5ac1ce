// Namespaces that many files of this project use, imported once; each file lists only the others it needs.
global using System.Globalization;
global using System.Text;
