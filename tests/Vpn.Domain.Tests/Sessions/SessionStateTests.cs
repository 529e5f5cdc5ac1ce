using Vpn.Domain.Sessions;

namespace Vpn.Domain.Tests.Sessions;

public class SessionStateTests
{
    [Theory]
    [InlineData(SessionState.Provisioning, "provisioning", true)]
    [InlineData(SessionState.Active, "active", true)]
    [InlineData(SessionState.Terminated, "terminated", false)]
    [InlineData(SessionState.Failed, "failed", false)]
    public void ToName_EveryState_ContractNameRoundTripsAndLiveness(SessionState state, string name, bool live)
    {
        Assert.Equal(name, state.ToName());
        Assert.Equal(state, SessionStates.Parse(name));
        Assert.Equal(live, state.IsLive());
    }

    [Fact]
    public void ToName_AllStates_DistinctNames()
    {
        var names = Enum.GetValues<SessionState>().Select(s => s.ToName()).ToList();
        Assert.Equal(4, names.Count);
        Assert.Equal(names.Count, names.Distinct(StringComparer.Ordinal).Count());
    }

    [Theory]
    [InlineData("Active")]
    [InlineData("")]
    [InlineData("live")]
    public void Parse_UnknownName_Throws(string name) => Assert.Throws<FormatException>(() => SessionStates.Parse(name));

    [Fact]
    public void ToName_UndefinedValue_Throws() => Assert.Throws<ArgumentOutOfRangeException>(() => ((SessionState)42).ToName());
}
