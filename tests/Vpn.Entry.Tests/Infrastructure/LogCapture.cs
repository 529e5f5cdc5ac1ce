using System.Collections.Concurrent;

namespace Vpn.Entry.Tests.Infrastructure;

/// <summary>One log line as entry wrote it: the formatted message, every structured value and the exception logged with it.</summary>
public sealed record CapturedLog(string Category, EventId EventId, LogLevel Level, string Message, IReadOnlyList<KeyValuePair<string, object?>> State,
    Exception? Exception = null)
{
    /// <summary>Everything a log sink could see of the line.</summary>
    public string AllText => Message + " " + string.Join(" ", State.Select(p => $"{p.Key}={p.Value}"));
}

/// <summary>
/// Captures every log line of a running entry. Added to the host's <see cref="ILoggerFactory"/> after start, which
/// also reaches loggers created before (singletons such as the audit log), under the host's level filters.
/// </summary>
/// <param name="minimum">The lowest level kept (every level by default; <see cref="ErrorLogScope"/> keeps Error and up).</param>
internal sealed class LogCapture(LogLevel minimum = LogLevel.Trace) : ILoggerProvider
{
    private readonly ConcurrentQueue<CapturedLog> _lines = new();

    public IReadOnlyList<CapturedLog> Lines => [.. _lines];

    public static LogCapture AttachTo(TestStack stack)
    {
        var capture = new LogCapture();
        stack.EntryServices.GetRequiredService<ILoggerFactory>().AddProvider(capture);
        return capture;
    }

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, minimum, _lines);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, LogLevel minimum, ConcurrentQueue<CapturedLog> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }
            var values = state as IReadOnlyList<KeyValuePair<string, object?>> ?? [];
            lines.Enqueue(new CapturedLog(category, eventId, logLevel, formatter(state, exception), [.. values], exception));
        }
    }
}
