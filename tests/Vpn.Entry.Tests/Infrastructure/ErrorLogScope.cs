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
    private readonly ConcurrentQueue<CapturedLog> _errors = new();
    private readonly ConcurrentQueue<Func<CapturedLog, bool>> _expected = new();

    /// <summary>Every Error and Critical line so far, expected or not.</summary>
    public IReadOnlyList<CapturedLog> Errors => [.. _errors];

    /// <summary>The lines no expectation allows.</summary>
    public IReadOnlyList<CapturedLog> Unexpected => [.. _errors.Where(e => !_expected.Any(expected => expected(e)))];

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

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _errors);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<CapturedLog> errors) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }
            var values = state as IReadOnlyList<KeyValuePair<string, object?>> ?? [];
            errors.Enqueue(new CapturedLog(category, eventId, logLevel, formatter(state, exception), [.. values], exception));
        }
    }
}
