using Vpn.Core.Reconciliation;
using Vpn.Core.Usage;

namespace Vpn.Core.Tests.Usage;

/// <summary>
/// The meter's counting rules: cumulative per generation, a new generation whenever the device's counters start again
/// (they went down, the peer was re-added, the device recreated), a key passed to another session counts from where it
/// was, a restarted core continues entry's recorded generation, and only changes are pending.
/// </summary>
public class UsageMeterTests
{
    private static readonly WireGuardKey KeyA = WireGuardKey.ParseBase64(Convert.ToBase64String(Enumerable.Repeat((byte)7, 32).ToArray()));
    private static readonly Guid S1 = Guid.Parse("0195a8c4-0000-7000-8000-0000000000a1");
    private static readonly Guid S2 = Guid.Parse("0195a8c4-0000-7000-8000-0000000000a2");

    private static SessionUsage Single(UsageMeter meter)
    {
        var batch = meter.Take(100);
        var usage = Assert.Single(batch);
        meter.Delivered(batch);
        return usage;
    }

    [Fact]
    public void Growth_within_a_run_keeps_the_generation_and_reports_cumulative_bytes()
    {
        var meter = new UsageMeter();
        meter.Observe([(KeyA, S1, 100UL, 50UL)], null);
        var first = Single(meter);
        meter.Observe([(KeyA, S1, 300UL, 80UL)], null);
        var second = Single(meter);

        Assert.Equal((S1, 100L, 50L), (first.SessionId, first.RxBytes, first.TxBytes));
        Assert.Equal((first.Generation, 300L, 80L), (second.Generation, second.RxBytes, second.TxBytes));
        Assert.True(first.Generation > 0);
    }

    [Fact]
    public void Unchanged_or_zero_counters_are_not_pending()
    {
        var meter = new UsageMeter();
        meter.Observe([(KeyA, S1, 0UL, 0UL)], null);
        Assert.Equal(0, meter.PendingCount);
        meter.Observe([(KeyA, S1, 10UL, 0UL)], null);
        Single(meter);
        meter.Observe([(KeyA, S1, 10UL, 0UL)], null);
        Assert.Equal(0, meter.PendingCount);
    }

    [Fact]
    public void Counters_that_went_down_start_a_new_generation()
    {
        var meter = new UsageMeter();
        meter.Observe([(KeyA, S1, 1000UL, 1000UL)], null);
        var before = Single(meter);
        meter.Observe([(KeyA, S1, 10UL, 5UL)], null);
        var after = Single(meter);

        Assert.NotEqual(before.Generation, after.Generation);
        Assert.Equal((10L, 5L), (after.RxBytes, after.TxBytes));
    }

    [Fact]
    public void A_peer_missing_from_a_read_comes_back_as_a_new_run_even_if_its_counters_grew_past_the_old_ones()
    {
        // Re-added by reconciliation, or wireguard-go restarted and the device recreated: a read without the peer between.
        var meter = new UsageMeter();
        meter.Observe([(KeyA, S1, 100UL, 100UL)], null);
        var before = Single(meter);
        meter.Observe([], null);
        meter.Observe([(KeyA, S1, 500UL, 500UL)], null);
        var after = Single(meter);

        Assert.NotEqual(before.Generation, after.Generation);
        Assert.Equal((500L, 500L), (after.RxBytes, after.TxBytes));
    }

    [Fact]
    public void Unchanged_counters_after_the_session_left_and_came_back_are_pending_again()
    {
        var meter = new UsageMeter();
        meter.Observe([(KeyA, S1, 100UL, 0UL)], null);
        Single(meter);
        meter.Observe([(KeyA, S2, 100UL, 0UL)], null); // the key passed to S2: S1's report is forgotten
        Single(meter);
        meter.Observe([(KeyA, S1, 100UL, 0UL)], null);

        Assert.Equal(S1, Single(meter).SessionId);
    }

    [Fact]
    public void A_key_passed_to_another_session_keeps_its_run()
    {
        // Entry counts the new session's growth from the run's last counters (recorded on the old session's row).
        var meter = new UsageMeter();
        meter.Observe([(KeyA, S1, 1000UL, 400UL)], null);
        var before = Single(meter);
        meter.Observe([(KeyA, S2, 1100UL, 450UL)], null);
        var next = Single(meter);

        Assert.Equal((S2, before.Generation, 1100L, 450L), (next.SessionId, next.Generation, next.RxBytes, next.TxBytes));
    }

    [Fact]
    public void An_undelivered_reading_of_an_ended_run_is_sent_before_the_new_runs()
    {
        var meter = new UsageMeter();
        meter.Observe([(KeyA, S1, 5000UL, 100UL)], null);
        var lost = meter.Take(10);
        meter.Return(lost);
        meter.Observe([(KeyA, S1, 10UL, 1UL)], null); // wireguard-go restarted: a new run

        var first = Single(meter);
        var second = Single(meter);

        Assert.Equal((lost[0].Generation, 5000L), (first.Generation, first.RxBytes));
        Assert.NotEqual(first.Generation, second.Generation);
        Assert.Equal(10L, second.RxBytes);
    }

    [Fact]
    public void A_restarted_core_without_entry_at_first_still_continues_the_recorded_generation_later()
    {
        var meter = new UsageMeter();
        meter.Observe([], null); // entry unreachable on the first pass: no leases, nothing mapped
        var desired = new DesiredSnapshot(DateTimeOffset.UnixEpoch,
            [new DesiredSession(S1, KeyA, IPAddress.Parse("10.64.0.2"), DesiredSessionState.Active, Usage: new SessionUsage(S1, 42, 800, 300))]);
        meter.Observe([(KeyA, S1, 900UL, 300UL)], desired);

        Assert.Equal(42L, Single(meter).Generation);
    }

    [Fact]
    public void Counters_beyond_signed_64_bits_saturate()
    {
        var meter = new UsageMeter();
        meter.Observe([(KeyA, S1, ulong.MaxValue, 1UL)], null);

        Assert.Equal(long.MaxValue, Single(meter).RxBytes);
    }

    [Fact]
    public void A_restarted_core_continues_the_recorded_generation_when_the_device_is_not_below_it()
    {
        var meter = new UsageMeter();
        var desired = new DesiredSnapshot(DateTimeOffset.UnixEpoch,
            [new DesiredSession(S1, KeyA, IPAddress.Parse("10.64.0.2"), DesiredSessionState.Active, Usage: new SessionUsage(S1, 42, 800, 300))]);
        meter.Observe([(KeyA, S1, 900UL, 300UL)], desired);
        var usage = Single(meter);

        Assert.Equal((42L, 900L, 300L), (usage.Generation, usage.RxBytes, usage.TxBytes));
    }

    [Fact]
    public void A_restarted_core_whose_device_is_below_the_recorded_counters_starts_a_new_generation()
    {
        var meter = new UsageMeter();
        var desired = new DesiredSnapshot(DateTimeOffset.UnixEpoch,
            [new DesiredSession(S1, KeyA, IPAddress.Parse("10.64.0.2"), DesiredSessionState.Active, Usage: new SessionUsage(S1, 42, 800, 300))]);
        meter.Observe([(KeyA, S1, 50UL, 20UL)], desired);
        var usage = Single(meter);

        Assert.NotEqual(42L, usage.Generation);
        Assert.Equal((50L, 20L), (usage.RxBytes, usage.TxBytes));
    }

    [Fact]
    public void The_recorded_generation_is_adopted_only_on_the_first_read_with_a_desired_state()
    {
        var meter = new UsageMeter();
        meter.Observe([], new DesiredSnapshot(DateTimeOffset.UnixEpoch, []));
        var desired = new DesiredSnapshot(DateTimeOffset.UnixEpoch,
            [new DesiredSession(S1, KeyA, IPAddress.Parse("10.64.0.2"), DesiredSessionState.Active, Usage: new SessionUsage(S1, 42, 800, 300))]);
        meter.Observe([(KeyA, S1, 900UL, 300UL)], desired);

        Assert.NotEqual(42L, Single(meter).Generation);
    }

    [Fact]
    public void Undelivered_reports_are_pending_again_but_never_over_a_newer_reading()
    {
        var meter = new UsageMeter();
        meter.Observe([(KeyA, S1, 100UL, 0UL)], null);
        var lost = meter.Take(10);
        meter.Return(lost);
        Assert.Equal(100L, Single(meter).RxBytes);

        meter.Observe([(KeyA, S1, 200UL, 0UL)], null);
        var stale = meter.Take(10);
        meter.Observe([(KeyA, S1, 300UL, 0UL)], null);
        meter.Return(stale);
        Assert.Equal(300L, Single(meter).RxBytes);
    }

    [Fact]
    public void Take_bounds_the_batch_and_leaves_the_rest_pending()
    {
        var meter = new UsageMeter();
        var peers = Enumerable.Range(1, 5).Select(i => (Key(i), Guid.NewGuid(), (ulong)i, 0UL)).ToList();
        meter.Observe(peers, null);

        Assert.Equal(2, meter.Take(2).Count);
        Assert.Equal(3, meter.PendingCount);
    }

    private static WireGuardKey Key(int i) => WireGuardKey.ParseBase64(Convert.ToBase64String(Enumerable.Repeat((byte)(i + 10), 32).ToArray()));
}
