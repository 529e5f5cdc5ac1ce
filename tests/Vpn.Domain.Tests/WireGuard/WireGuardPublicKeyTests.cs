using System.Numerics;

namespace Vpn.Domain.Tests.WireGuard;

/// <summary>
/// Which keys may be a peer's public key: against an independent oracle (BigInteger arithmetic mod p and an x-only
/// Montgomery ladder written from RFC 7748 §5), not against the list the code holds.
/// </summary>
public class WireGuardPublicKeyTests
{
    private static readonly BigInteger P = BigInteger.Pow(2, 255) - 19;

    private static readonly BigInteger Bit255 = BigInteger.Pow(2, 255);

    // libsodium's has_small_order list with bit 255 clear, as integers (its comments give the two order-8 ones in decimal).
    private static readonly BigInteger[] SmallOrderU =
    [
        0, 1, P - 1, P, P + 1,
        BigInteger.Parse("325606250916557431795983626356110631294008115727848805560023387167927233504", System.Globalization.CultureInfo.InvariantCulture),
        BigInteger.Parse("39382357235489614581723060781553021112529911719440698176882885853963445705823", System.Globalization.CultureInfo.InvariantCulture),
    ];

    private static WireGuardKey KeyOf(BigInteger u)
    {
        var bytes = new byte[WireGuardKey.Length];
        Assert.True(u.TryWriteBytes(bytes, out _, isUnsigned: true, isBigEndian: false));
        return WireGuardKey.FromBytes(bytes);
    }

    private static BigInteger ValueOf(ReadOnlySpan<byte> bytes) => new(bytes, isUnsigned: true, isBigEndian: false);

    private static PublicKeyDefect Oracle(ReadOnlySpan<byte> bytes)
    {
        var raw = ValueOf(bytes);
        var u = raw % Bit255; // X25519 masks bit 255 (RFC 7748 §5)
        if (SmallOrderU.Any(s => s % P == u % P))
        {
            return PublicKeyDefect.SmallOrder;
        }
        return raw >= P ? PublicKeyDefect.NonCanonical : PublicKeyDefect.None;
    }

    /// <summary>[k]u by the RFC 7748 §5 ladder (no clamping); null when the result is the point at infinity (Z = 0).</summary>
    private static BigInteger? Ladder(BigInteger k, BigInteger u)
    {
        static BigInteger Mod(BigInteger v) => ((v % P) + P) % P;
        BigInteger x1 = Mod(u), x2 = 1, z2 = 0, x3 = Mod(u), z3 = 1;
        var swap = 0;
        for (var t = 254; t >= 0; t--)
        {
            var bit = (int)((k >> t) & 1);
            swap ^= bit;
            if (swap == 1)
            {
                (x2, x3) = (x3, x2);
                (z2, z3) = (z3, z2);
            }
            swap = bit;
            var a = Mod(x2 + z2);
            var aa = Mod(a * a);
            var b = Mod(x2 - z2);
            var bb = Mod(b * b);
            var e = Mod(aa - bb);
            var c = Mod(x3 + z3);
            var d = Mod(x3 - z3);
            var da = Mod(d * a);
            var cb = Mod(c * b);
            x3 = Mod((da + cb) * (da + cb));
            z3 = Mod(x1 * Mod((da - cb) * (da - cb)));
            x2 = Mod(aa * bb);
            z2 = Mod(e * Mod(aa + (121665 * e)));
        }
        if (swap == 1)
        {
            (x2, _) = (x3, x2);
            (z2, _) = (z3, z2);
        }
        return z2.IsZero ? null : Mod(x2 * BigInteger.ModPow(z2, P - 2, P));
    }

    [Fact]
    public void Ladder_Rfc7748TestVector_MatchesSoTheOracleIsRight()
    {
        // RFC 7748 §5.2, first vector (the scalar clamped as X25519 does).
        var scalar = Convert.FromHexString("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
        scalar[0] &= 248;
        scalar[31] = (byte)((scalar[31] & 127) | 64);
        var u = ValueOf(Convert.FromHexString("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")) % Bit255;
        var expected = ValueOf(Convert.FromHexString("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"));
        Assert.Equal(expected, Ladder(ValueOf(scalar), u));
    }

    [Fact]
    public void SmallOrderList_EveryPoint_HasOrderDividing8()
    {
        foreach (var u in SmallOrderU)
        {
            // 8·P is the point at infinity exactly for the points of order 1, 2, 4 or 8. u = 0 is the point (0, 0) of order 2.
            Assert.True(u.IsZero || Ladder(8, u) is null, $"{u} is not of small order");
        }
    }

    [Theory]
    // 0, 1, the two points of order 8, p-1, p, p+1; then the same with bit 255 set.
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData("4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=")]
    [InlineData("X5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEVc=")]
    [InlineData("7P///////////////////////////////////////38=")]
    [InlineData("7f///////////////////////////////////////38=")]
    [InlineData("7v///////////////////////////////////////38=")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA=")]
    [InlineData("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA=")]
    [InlineData("4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuIA=")]
    [InlineData("X5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEdc=")]
    [InlineData("7P////////////////////////////////////////8=")]
    [InlineData("7f////////////////////////////////////////8=")]
    [InlineData("7v////////////////////////////////////////8=")]
    public void CheckPublicKey_WellKnownSmallOrderSpelling_SmallOrder(string text)
    {
        Assert.True(WireGuardKey.TryParseBase64(text, out var key), text);
        Assert.Equal(PublicKeyDefect.SmallOrder, key.CheckPublicKey());
        Assert.False(key.IsAcceptablePublicKey);
    }

    [Fact]
    public void CheckPublicKey_DefaultKey_SmallOrder() => Assert.Equal(PublicKeyDefect.SmallOrder, default(WireGuardKey).CheckPublicKey());

    [Fact]
    public void CheckPublicKey_EveryValueFromPUpward_Refused()
    {
        // p .. 2^255-1 are the non-canonical spellings of 0 .. 18; 0 and 1 are small order, the rest merely non-canonical.
        for (var i = 0; i <= 18; i++)
        {
            var key = KeyOf(P + i);
            Assert.Equal(i <= 1 ? PublicKeyDefect.SmallOrder : PublicKeyDefect.NonCanonical, key.CheckPublicKey());
            Assert.Equal(i <= 1 ? PublicKeyDefect.SmallOrder : PublicKeyDefect.None, KeyOf(i).CheckPublicKey());
        }
        Assert.Equal(PublicKeyDefect.None, KeyOf(P - 2).CheckPublicKey());
    }

    [Fact]
    public void CheckPublicKey_RandomBytes_MatchesOracle()
    {
        // Half the samples near the top of the range, where the u ≥ p boundary is.
        var high = Gen.Byte.Array[WireGuardKey.Length].Select(Gen.Int[1, 31], (bytes, keep) =>
        {
            Array.Fill(bytes, (byte)0xff, keep, WireGuardKey.Length - keep);
            bytes[^1] &= 0x7f;
            return bytes;
        });
        Gen.OneOf(Gen.Byte.Array[WireGuardKey.Length], high).Sample(bytes =>
        {
            var key = WireGuardKey.FromBytes(bytes);
            Assert.Equal(Oracle(bytes), key.CheckPublicKey());
            Assert.Equal(key.CheckPublicKey() == PublicKeyDefect.None, key.IsAcceptablePublicKey);
        }, iter: 5000);
    }

    [Fact]
    public void CheckPublicKey_SmallOrderPointWithAnyBit255_SmallOrder()
    {
        Gen.Select(Gen.Int[0, SmallOrderU.Length - 1], Gen.Bool).Sample((index, top) =>
        {
            var bytes = KeyOf(SmallOrderU[index]).Bytes.ToArray();
            if (top)
            {
                bytes[^1] |= 0x80;
            }
            Assert.Equal(PublicKeyDefect.SmallOrder, WireGuardKey.FromBytes(bytes).CheckPublicKey());
        });
    }

    [Fact]
    public void AcceptedKey_NoOtherSpellingOfItsPoint_IsAccepted()
    {
        Gen.Byte.Array[WireGuardKey.Length].Sample(bytes =>
        {
            var key = WireGuardKey.FromBytes(bytes);
            if (!key.IsAcceptablePublicKey)
            {
                return;
            }
            var u = ValueOf(bytes);
            Assert.True(u < P);
            var withTopBit = bytes.ToArray();
            withTopBit[^1] |= 0x80;
            Assert.Equal(PublicKeyDefect.NonCanonical, WireGuardKey.FromBytes(withTopBit).CheckPublicKey());
            if (u + P < Bit255)
            {
                Assert.Equal(PublicKeyDefect.NonCanonical, KeyOf(u + P).CheckPublicKey());
            }
            // Not small order by the ladder either: 8·P is a real point.
            Assert.NotNull(Ladder(8, u));
        }, iter: 200);
    }

    [Fact]
    public void Generate_Always_AcceptablePublicKey()
    {
        for (var i = 0; i < 2000; i++)
        {
            var key = WireGuardKey.Generate();
            Assert.True(key.IsAcceptablePublicKey, key.ToHex());
        }
    }
}
