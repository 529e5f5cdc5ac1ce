namespace Vpn.Cli.Tests.Output;

public sealed class ExplanationTests
{
    [Fact]
    public void ProblemJson_IsOneLineWithStatusCodeAndDetail()
    {
        var problem = ApiProblemException.From(System.Net.HttpStatusCode.NotFound, "application/problem+json",
            """{"type":"about:blank","title":"Not Found","status":404,"detail":"No such node.","code":"node_not_found"}""");
        Assert.Equal("404 node_not_found: No such node.", problem.Message);
        Assert.Equal(ExitCodes.Refused, problem.ExitCode);
    }

    [Theory]
    [InlineData(400, ExitCodes.Refused)]
    [InlineData(403, ExitCodes.Refused)]
    [InlineData(409, ExitCodes.Refused)]
    [InlineData(401, ExitCodes.Unauthorized)]
    [InlineData(502, ExitCodes.Unavailable)]
    [InlineData(503, ExitCodes.Unavailable)]
    public void ExitCode_FollowsTheStatus(int status, int exitCode) => Assert.Equal(exitCode, ApiProblemException.ExitCodeFor(status));

    [Fact]
    public void NotJson_GetsACodeFromTheStatus()
    {
        var problem = ApiProblemException.From(System.Net.HttpStatusCode.BadGateway, "text/html", "<html>bad gateway</html>\nmore");
        Assert.Equal("502 http_502: <html>bad gateway</html>", problem.Message);
    }

    [Fact]
    public void NoNodes_RejectedCountsInWords()
    {
        var problem = ApiProblemException.From(System.Net.HttpStatusCode.ServiceUnavailable, "application/problem+json", """
            {"status":503,"code":"no_nodes_available_in_region","detail":"No node in the region can take a session right now.","retry_after":3,
             "rejected":{"region_mismatch":4,"filter_mismatch":0,"unhealthy":1,"stale_heartbeat":0,"at_capacity":2,"draining":0}}
            """);
        Assert.Equal("No server can take a session in that region right now: 1 server unhealthy, 2 servers full, 4 servers in other regions. "
            + "Entry suggests retrying in 3 s. Try again later, or another region or fewer filters.", SessionExplainer.Explain(problem));
    }

    [Fact]
    public void Conflict_NamesTheOtherSessionAndReplace()
    {
        var problem = ApiProblemException.From(System.Net.HttpStatusCode.Conflict, "application/problem+json",
            """{"status":409,"code":"session_conflict","detail":"Another session is active for this customer.","active_session_id":"s-1"}""");
        var words = SessionExplainer.Explain(problem);
        Assert.StartsWith("You already have a session (s-1)", words, StringComparison.Ordinal);
        Assert.Contains("--replace", words, StringComparison.Ordinal);
    }

    [Fact]
    public void QuotaExceeded_SaysWhenItResets()
    {
        var problem = ApiProblemException.From(System.Net.HttpStatusCode.Forbidden, "application/problem+json",
            """{"status":403,"code":"quota_exceeded","detail":"The plan's data quota for this billing period is used up.","resets_at":"2027-02-28T00:00:00+00:00"}""");
        Assert.Equal("Your plan's data for this billing period is used up; it resets at 2027-02-28T00:00:00+00:00. 'vpnctl client status' shows what is used.",
            SessionExplainer.Explain(problem));
    }
}
