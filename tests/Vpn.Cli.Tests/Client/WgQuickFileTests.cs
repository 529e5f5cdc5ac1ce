namespace Vpn.Cli.Tests.Client;

public sealed class WgQuickFileTests
{
    private const string Session = "[Interface]\nPrivateKey = <your device private key>\nAddress = 10.64.0.2/32, fd64:6400::2/128\nDNS = 10.64.0.1\n\n[Peer]\nPublicKey = abc=\nAllowedIPs = 0.0.0.0/0, ::/0\n";

    [Fact]
    public void Fill_ReplacesThePlaceholderLineOnly()
    {
        var filled = WgQuickFile.Fill(Session, "KEY=");
        Assert.Equal(Session.Replace("<your device private key>", "KEY=", StringComparison.Ordinal), filled);
    }

    [Fact]
    public void Fill_NoOrTwoPrivateKeyLines_Throws()
    {
        Assert.Throws<CliException>(() => WgQuickFile.Fill("[Interface]\nAddress = 10.64.0.2/32\n", "KEY="));
        Assert.Throws<CliException>(() => WgQuickFile.Fill(Session + "[Interface]\nPrivateKey = x\n", "KEY="));
    }

    [Theory]
    [InlineData("/tmp/wg0.conf", true)]
    [InlineData("/tmp/wg-vpn.conf", true)]
    [InlineData("/tmp/a-very-long-name.conf", false)]
    [InlineData("/tmp/wg 0.conf", false)]
    [InlineData("/tmp/wg0.txt", false)]
    [InlineData("/tmp/.conf", false)]
    public void CheckName_FollowsWgQuickInterfaceNames(string path, bool ok)
    {
        var error = Record.Exception(() => WgQuickFile.CheckName(path));
        Assert.Equal(ok, error is null);
    }
}

public sealed class PrivateFilesTests
{
    [Fact]
    public void Write_NewAndExistingFile_IsOwnerOnlyAndReplaced()
    {
        var directory = Directory.CreateTempSubdirectory("vpnctl-files-");
        try
        {
            var path = Path.Combine(directory.FullName, "wg0.conf");
            File.WriteAllText(path, "old");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            PrivateFiles.Write(path, "new");
            Assert.Equal("new", File.ReadAllText(path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Single(Directory.GetFiles(directory.FullName));
            var state = PrivateFiles.EnsureDirectory(Path.Combine(directory.FullName, "state"));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(state));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
