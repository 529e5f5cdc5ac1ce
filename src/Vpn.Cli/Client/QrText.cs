using QRCoder;

namespace Vpn.Cli.Client;

/// <summary>
/// A QR code as terminal text: two modules per character with the Unicode half blocks (▀ ▄ █ and space), the
/// 4-module quiet zone included. By default the light modules are drawn (a light-on-dark terminal shows dark modules
/// as its background); <c>invert</c> draws the dark ones, for dark-on-light terminals.
/// </summary>
public static class QrText
{
    public static string Render(string text, bool invert = false)
    {
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(text, QRCodeGenerator.ECCLevel.L);
        var matrix = data.ModuleMatrix;
        var size = matrix.Count;
        bool Drawn(int row, int column) => row < size && matrix[row][column] == invert;
        var output = new StringBuilder();
        for (var row = 0; row < size; row += 2)
        {
            for (var column = 0; column < size; column++)
            {
                // A row past the end (odd size) is quiet zone: light.
                var top = Drawn(row, column);
                var bottom = row + 1 < size ? Drawn(row + 1, column) : !invert;
                output.Append((top, bottom) switch
                {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    _ => ' ',
                });
            }
            output.Append('\n');
        }
        return output.ToString();
    }
}
