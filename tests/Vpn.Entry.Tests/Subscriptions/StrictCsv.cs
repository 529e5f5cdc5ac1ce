namespace Vpn.Entry.Tests.Subscriptions;

/// <summary>What the export tests read the CSV with: stricter than any client, so every quoting slip fails.</summary>
internal static class StrictCsv
{
    /// <summary>
    /// A strict RFC 4180 reader: records end with CRLF (a bare CR or LF outside quotes fails), quoted fields may hold
    /// anything with quotes doubled, a quote inside an unquoted field fails, the last record ends with CRLF.
    /// </summary>
    public static List<string[]> Parse(string text)
    {
        var records = new List<string[]>();
        var fields = new List<string>();
        var field = new StringBuilder();
        var i = 0;
        while (i < text.Length)
        {
            if (text[i] == '"')
            {
                i++;
                while (true)
                {
                    Assert.True(i < text.Length, "unterminated quoted field");
                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"')
                        {
                            field.Append('"');
                            i += 2;
                            continue;
                        }
                        i++;
                        break;
                    }
                    field.Append(text[i++]);
                }
                Assert.True(i < text.Length && text[i] is ',' or '\r', $"text after a closing quote at {i}");
            }
            else
            {
                while (i < text.Length && text[i] is not (',' or '\r'))
                {
                    Assert.True(text[i] is not ('"' or '\n'), $"bare quote or LF in an unquoted field at {i}");
                    field.Append(text[i++]);
                }
            }
            fields.Add(field.ToString());
            field.Clear();
            Assert.True(i < text.Length, "the last record does not end with CRLF");
            if (text[i] == ',')
            {
                i++;
                continue;
            }
            Assert.True(i + 1 < text.Length && text[i + 1] == '\n', $"CR without LF at {i}");
            i += 2;
            records.Add([.. fields]);
            fields.Clear();
        }
        Assert.Empty(fields);
        return records;
    }
}
