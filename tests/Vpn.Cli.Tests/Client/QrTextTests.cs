namespace Vpn.Cli.Tests.Client;

public sealed class QrTextTests
{
    [Fact]
    public void Render_IsASquareOfHalfBlocksWithAQuietZone()
    {
        var lines = QrText.Render("[Interface]\nPrivateKey = x\n").TrimEnd('\n').Split('\n');
        var width = lines[0].Length;
        Assert.All(lines, l => Assert.Equal(width, l.Length));
        // Two modules per character row; the size is odd (21 + 4k modules plus 8 of quiet zone), hence the last half row.
        Assert.Equal((width + 1) / 2, lines.Length);
        Assert.All(lines, l => Assert.Matches("^[█▀▄ ]+$", l));
        // The quiet zone is light, drawn by default: the first two character rows are full blocks.
        Assert.Equal(new string('█', width), lines[0]);
        Assert.Equal(new string('█', width), lines[1]);
    }

    [Fact]
    public void Render_Inverted_SwapsEveryCell()
    {
        var plain = QrText.Render("vpnctl");
        var inverted = QrText.Render("vpnctl", invert: true);
        Assert.Equal(plain.Length, inverted.Length);
        for (var i = 0; i < plain.Length - 2 * (plain.IndexOf('\n', StringComparison.Ordinal) + 1); i++)
        {
            var expected = plain[i] switch { '█' => ' ', ' ' => '█', '▀' => '▄', '▄' => '▀', var c => c };
            Assert.Equal(expected, inverted[i]);
        }
    }
}
