using System.Collections.Concurrent;

namespace Vpn.Entry.Tests.Infrastructure;

/// <summary>
/// Fails a test when entry or one of its in-process cores logs an error the test did not expect (as grpc-dotnet's
/// functional tests do): a logger provider in every host of a <see cref="TestStack"/> records each Error and Critical
/// line, and <see cref="TestStack.DisposeAsync"/> calls <see cref="Verify"/>, which throws naming every line that no
/// <see cref="Expect"/> of the test allowed. A test that provokes errors on purpose (a core that fails, a store that
/// throws) says which ones with <see cref="TestStack.ExpectErrors"/>.
/// </summary>
public sealed class ErrorLogScope : ILoggerProvider
{
    private readonly LogCapture _errors = new(LogLevel.Error);
    private readonly ConcurrentQueue<Func<CapturedLog, bool>> _expected = new();

    /// <summary>Every Error and Critical line so far, expected or not.</summary>
    public IReadOnlyList<CapturedLog> Errors => _errors.Lines;

    /// <summary>The lines no expectation allows.</summary>
    public IReadOnlyList<CapturedLog> Unexpected => [.. _errors.Lines.Where(e => !_expected.Any(expected => expected(e)))];

    /// <summary>Error lines matching <paramref name="match"/> are part of the test, not a fault.</summary>
    public void Expect(Func<CapturedLog, bool> match) => _expected.Enqueue(match);

    /// <summary>Throws (failing the test) when an error was logged that no <see cref="Expect"/> allows.</summary>
    public void Verify()
    {
        var unexpected = Unexpected;
        if (unexpected.Count > 0)
        {
            throw new Xunit.Sdk.XunitException(
                $"{unexpected.Count} unexpected error(s) logged (a test that provokes them says so with TestStack.ExpectErrors):\n" +
                string.Join("\n", unexpected.Select(e => $"  [{e.Level}] {e.Category} ({e.EventId.Id}): {e.Message}" +
                    (e.Exception is null ? "" : $"\n    {e.Exception.GetType().Name}: {e.Exception.Message}"))));
        }
    }

    /// <summary>Loggers that keep Error and Critical lines only (the capture of <see cref="LogCapture"/>, filtered).</summary>
    public ILogger CreateLogger(string categoryName) => _errors.CreateLogger(categoryName);

    public void Dispose() => _errors.Dispose();
}
