using System.Diagnostics.CodeAnalysis;

namespace Vpn.Entry.Data.InMemory;

/// <summary>
/// The in-memory sessions table: a dictionary by id whose every replacement and removal of a row is reported to
/// <see cref="Changed"/> (old row, new row or null when removed) — the in-memory counterpart of migration 0009's trigger,
/// so session events need no code in the stores' operations. Called under <see cref="InMemoryDatabase.Gate"/>, like
/// every write; the handler must not block.
/// </summary>
internal sealed class InMemorySessionTable
{
    private readonly Dictionary<Guid, SessionRecord> _rows = [];

    public Action<SessionRecord, SessionRecord?>? Changed { get; set; }

    public Dictionary<Guid, SessionRecord>.ValueCollection Values => _rows.Values;

    public SessionRecord this[Guid id]
    {
        get => _rows[id];
        set
        {
            _rows.TryGetValue(id, out var before);
            _rows[id] = value;
            if (before is not null)
            {
                Changed?.Invoke(before, value);
            }
        }
    }

    public bool TryGetValue(Guid id, [MaybeNullWhen(false)] out SessionRecord session) => _rows.TryGetValue(id, out session);

    public bool Remove(Guid id)
    {
        if (!_rows.Remove(id, out var before))
        {
            return false;
        }
        Changed?.Invoke(before, null);
        return true;
    }
}
