using System.Text;

namespace Vpn.Entry.Http;

/// <summary>
/// A streamed export: one line per row written as the store produces it, flushed every <see cref="FlushEvery"/> rows,
/// so the service holds a few KiB whatever the row count (the subscriptions CSV, the audit trail).
/// </summary>
internal static class LineStream
{
    public const int FlushEvery = 256;

    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>Writes <paramref name="header"/> (when given), then each row as <paramref name="appendLine"/> formats it (line end included).</summary>
    public static async Task WriteAsync<T>(Stream body, IAsyncEnumerable<T> rows, string? header, Action<StringBuilder, T> appendLine,
        CancellationToken cancellationToken)
    {
        await using var enumerator = rows.GetAsyncEnumerator(cancellationToken);
        // The query runs here, before a byte is written: a store outage still becomes a problem+json answer.
        var hasRow = await enumerator.MoveNextAsync();
        // Kestrel refuses synchronous writes, so every write below is async (a line is built, then written).
        await using var writer = new StreamWriter(body, Utf8NoBom, bufferSize: 16 * 1024, leaveOpen: true);
        var line = new StringBuilder(256);
        if (header is not null)
        {
            await writer.WriteAsync(header);
        }
        var sinceFlush = 0;
        while (hasRow)
        {
            appendLine(line.Clear(), enumerator.Current);
            await writer.WriteAsync(line, cancellationToken);
            if (++sinceFlush == FlushEvery)
            {
                await writer.FlushAsync(cancellationToken);
                sinceFlush = 0;
            }
            hasRow = await enumerator.MoveNextAsync();
        }
        await writer.FlushAsync(cancellationToken);
    }
}
