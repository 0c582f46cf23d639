"""A structural check of Yjs v1 update bytes, done in Python before pycrdt sees them.

Why not just call ``apply_update`` and catch the error?  pycrdt (yrs 0.28) decodes an update
completely before changing anything, so garbage and truncated bytes already fail cleanly.  But
one error comes *during* integration, after earlier structs were stored: an item that names its
parent by ID where that ID is an ordinary item ("block parent … must be deleted or shared ref
type").  The document is then left half-updated — measured with mutated real updates.  Yrs also
silently truncates out-of-range integers (a clock of 2**63 becomes 0) and preallocates whatever
count a message announces.  The scan below catches all of that up front, and it tells the
document what it needs to know cheaply: whether the update inserts only ASCII text (so the
code-point index can stay on its fast path), whether any item names an explicit parent (so the
document can check it against a scratch copy), and which clocks it covers (so updates that wait
for missing predecessors can be kept for snapshots).

The format (``UpdateEncoderV1`` in yjs/src/utils/UpdateEncoder.js): a list of per-client struct
runs, then a delete set.  Every struct is a GC, a Skip or an Item; an Item's info byte says
whether it has a left origin (0x80), a right origin (0x40), and — only when it has neither — an
explicit parent (root name or item ID) and parent key (0x20); its low five bits select the
content kind.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from crdt.errors import UpdateError
from crdt.lib0 import DecodeError, check_count, read_var_bytes, read_var_uint, skip_any

MAX_CLOCK = 2**32 - 1  # yrs keeps clocks and lengths as u32 and wraps larger values silently
EMPTY_UPDATE = b"\x00\x00"  # no structs, empty delete set: what Yjs sends when nothing is new

# Low five bits of an item's info byte (yjs/src/structs/Item.js, contentRefs).
_GC, _DELETED, _JSON, _BINARY, _STRING, _EMBED, _FORMAT, _TYPE, _ANY, _DOC, _SKIP = range(11)
_TYPE_REFS_WITH_NAME = (3, 5)  # YXmlElement and YXmlHook carry a node name
_MAX_TYPE_REF = 6  # YXmlText; yrs-only kinds (weak links, …) are not part of the Yjs protocol


class UpdateSummary(NamedTuple):
    """What :func:`scan_update` learned about an update.

    ``ends`` maps each client to the clock just past its last struct or deleted range in this
    update: once the document's state vector reaches every one of them, the update is fully
    integrated (nothing of it is waiting for missing predecessors).  ``starts`` maps each client
    with structs to the clock its first struct starts at: until the state vector reaches it, the
    update cannot integrate.
    """

    empty: bool  # no structs and no deletions: applying it changes nothing
    plain_ascii: bool  # only ASCII strings, deletions, formatting: no embeds or nested types
    explicit_parent: bool  # some item names its parent by ID (only nested types do that)
    ends: dict[int, int]
    starts: dict[int, int]
    deletes: bool = False  # a non-empty delete set
    skips: bool = False  # a Skip struct: a gap in some client's clocks
    origins: tuple[int, ...] = ()  # byte offsets of origin IDs naming another client's items


def scan_update(update: bytes) -> UpdateSummary:
    """Check that ``update`` is one well-formed Yjs v1 update and summarise it.

    Raises :class:`UpdateError` (saying what is wrong at which byte) for truncated data, unknown
    struct kinds, integers yrs would truncate, counts larger than the data, or trailing bytes.
    """
    if not isinstance(update, bytes):
        raise UpdateError(f"a Yjs update must be bytes, not {type(update).__name__}")
    try:
        return _scan(update)
    except DecodeError as exc:
        raise UpdateError(f"malformed Yjs update: {exc}") from None


def _scan(data: bytes) -> UpdateSummary:
    # The hot path of every remote edit: varints are read inline when they fit in one byte
    # (counts, lengths, small clocks), and client ids — 53-bit varints that repeat in every
    # update a client sends — through a small cache.
    uint = read_var_uint
    plain = True
    explicit = False
    ends: dict[int, int] = {}
    starts: dict[int, int] = {}
    origins: list[int] = []
    skips = False
    size = len(data)
    if size and data[0] < 0x80:  # the struct-run count: almost always 0 or 1
        n_clients, pos = data[0], 1
    else:
        n_clients, pos = uint(data, 0)
    if n_clients > size - pos:
        check_count(data, pos, n_clients, "client struct runs")
    for _ in range(n_clients):
        n_structs, pos = uint(data, pos)
        if n_structs > size - pos:
            check_count(data, pos, n_structs, "structs")
        client_at = pos
        client, pos = _read_client(data, pos)
        own = data[client_at:pos]  # this run's client id as encoded: varints are prefix-free
        clock, pos = uint(data, pos)
        end = clock
        if n_structs and clock < starts.get(client, MAX_CLOCK + 1):
            starts[client] = clock
        for _ in range(n_structs):
            if pos >= size:
                raise DecodeError(f"unexpected end of data at byte {pos} (expected a struct)")
            info = data[pos]
            pos += 1
            ref = info & 0x1F
            if ref > _SKIP:
                raise DecodeError(f"unknown struct kind {ref} at byte {pos - 1}")
            if ref in (_GC, _SKIP):
                length, pos = uint(data, pos)
                if length == 0:
                    raise DecodeError(f"zero-length struct at byte {pos}")
                clock += length
                if ref == _GC:
                    end = clock
                else:
                    skips = True
                continue
            # Origins by another client are noted (see UpdateSummary.origins); one by the run's
            # own client is an earlier struct of that client, known once the run follows on.
            if info & 0x80:  # left origin
                if not data.startswith(own, pos):
                    origins.append(pos)
                pos = _skip_id(data, pos)
            if info & 0x40:  # right origin
                if not data.startswith(own, pos):
                    origins.append(pos)
                pos = _skip_id(data, pos)
            if not info & 0xC0:  # no origins: the parent is written out
                parent_info, pos = uint(data, pos)
                if parent_info == 1:  # a root type, by name
                    pos = read_var_bytes(data, pos)[1]
                else:
                    explicit = True
                    pos = _skip_id(data, pos)
                if info & 0x20:  # parent key (map entry)
                    pos = read_var_bytes(data, pos)[1]
            if ref == _STRING:
                length = data[pos] if pos < size else 0x80
                if length < 0x80:
                    pos += 1
                else:
                    length, pos = uint(data, pos)
                stop = pos + length
                if stop > size:
                    raise DecodeError(f"text of {length} bytes at byte {pos} runs past the end")
                if not data[pos:stop].isascii():
                    plain = False
                    length = _utf16_length(data[pos:stop], stop)
                pos = stop
            elif ref == _DELETED:
                length, pos = uint(data, pos)
            elif ref == _FORMAT:
                pos = read_var_bytes(data, pos)[1]
                pos = read_var_bytes(data, pos)[1]
                length = 1
            else:
                plain = False
                length, pos = _skip_rich_content(data, pos, ref)
            if length == 0:
                raise DecodeError(f"zero-length item ending at byte {pos}")
            clock += length
            end = clock
        if clock > MAX_CLOCK:
            raise DecodeError(f"clock of client {client} exceeds 2**32 - 1")
        if end > ends.get(client, 0):
            ends[client] = end
    if pos < size and data[pos] < 0x80:
        n_ds = data[pos]
        pos += 1
    else:
        n_ds, pos = uint(data, pos)
    if n_ds > size - pos:
        check_count(data, pos, n_ds, "delete-set clients")
    deletes = False
    for _ in range(n_ds):
        client, pos = _read_client(data, pos)
        n_ranges, pos = uint(data, pos)
        check_count(data, pos, n_ranges, "deleted ranges")
        for _ in range(n_ranges):
            clock, pos = uint(data, pos)
            length, pos = uint(data, pos)
            end = clock + length
            if end > MAX_CLOCK:
                raise DecodeError(f"deleted range of client {client} exceeds clock 2**32 - 1")
            if length:
                deletes = True
                if end > ends.get(client, 0):
                    ends[client] = end
    if pos != size:
        raise DecodeError(f"{size - pos} unexpected bytes after the end of the update")
    return UpdateSummary(not n_clients and not deletes, plain, explicit, ends, starts, deletes,
                         skips, tuple(origins))


def origin_ids(data: bytes, offsets: tuple[int, ...]) -> list[tuple[int, int]]:
    """The (client, clock) of each origin ID at ``offsets`` of an update :func:`scan_update`
    accepted (so every ID there is well-formed)."""
    ids = []
    for pos in offsets:
        client, pos = _read_client(data, pos)
        clock = data[pos]
        if clock >= 0x80:
            clock = read_var_uint(data, pos)[0]
        ids.append((client, clock))
    return ids


_VARINT = re.compile(rb"[\x80-\xff]{0,8}[\x00-\x7f]")
_client_cache: dict[bytes, int] = {}


def _read_client(data: bytes, pos: int) -> tuple[int, int]:
    """Read a client id; ids repeat in every update a client sends, so decode each once."""
    match = _VARINT.match(data, pos)
    if match is None:
        return read_var_uint(data, pos)  # raises the precise error
    end = match.end()
    raw = data[pos:end]
    client = _client_cache.get(raw)
    if client is None:
        client = read_var_uint(data, pos)[0]
        if len(_client_cache) >= 4096:  # bounded: a stream of fresh ids must not grow memory
            _client_cache.clear()
        _client_cache[raw] = client
    return client, end


def _skip_id(data: bytes, pos: int) -> int:
    """Skip an item ID (client, clock); only its bounds matter here, not its value."""
    match = _ID.match(data, pos)
    if match is None:
        read_var_uint(data, pos)  # raise the precise error for the client ...
        pos = read_var_uint(data, pos)[1]
        read_var_uint(data, pos)  # ... or for the clock
        raise DecodeError(f"clock at byte {pos} exceeds 2**32 - 1")
    return match.end()


# An ID whose client fits lib0's 53 bits (at most 7 continuation bytes, then a terminator worth
# at most 2**4 - 1 when it is the eighth byte) and whose clock fits u32 (at most five bytes,
# the fifth at most 0x0f).  Matching the shape in C is several times faster than decoding.
_ID = re.compile(
    rb"(?:[\x80-\xff]{0,6}[\x00-\x7f]|[\x80-\xff]{7}[\x00-\x0f])"
    rb"(?:[\x80-\xff]{0,3}[\x00-\x7f]|[\x80-\xff]{4}[\x00-\x0f])"
)


def _utf16_length(raw: bytes, pos: int) -> int:
    """Yjs counts clocks of text in UTF-16 code units, so astral characters count twice."""
    try:
        return len(raw.decode("utf-8").encode("utf-16-le")) // 2
    except UnicodeError:
        raise DecodeError(f"text ending at byte {pos} is not valid UTF-8") from None


def _skip_rich_content(data: bytes, pos: int, ref: int) -> tuple[int, int]:
    """Skip the content kinds a plain-text document never creates; return (length, pos)."""
    if ref == _JSON:
        count, pos = read_var_uint(data, pos)
        check_count(data, pos, count, "JSON values")
        for _ in range(count):
            pos = read_var_bytes(data, pos)[1]
        return count, pos
    if ref == _ANY:
        count, pos = read_var_uint(data, pos)
        check_count(data, pos, count, "values")
        for _ in range(count):
            pos = skip_any(data, pos)
        return count, pos
    if ref in (_BINARY, _EMBED):
        return 1, read_var_bytes(data, pos)[1]
    if ref == _TYPE:
        type_ref, pos = read_var_uint(data, pos)
        if type_ref > _MAX_TYPE_REF:
            raise DecodeError(f"unknown shared type {type_ref} before byte {pos}")
        if type_ref in _TYPE_REFS_WITH_NAME:
            pos = read_var_bytes(data, pos)[1]
        return 1, pos
    # _DOC (kinds above _SKIP were refused by the caller)
    pos = read_var_bytes(data, pos)[1]  # guid
    return 1, skip_any(data, pos)  # options


def decode_state_vector(state_vector: bytes) -> dict[int, int]:
    """Decode an encoded state vector into ``{client: clock}``, or raise :class:`UpdateError`."""
    if not isinstance(state_vector, bytes):
        raise UpdateError(f"a state vector must be bytes, not {type(state_vector).__name__}")
    try:
        count, pos = read_var_uint(state_vector, 0)
        check_count(state_vector, pos, count, "state vector entries")
        state: dict[int, int] = {}
        for _ in range(count):
            client, pos = read_var_uint(state_vector, pos)
            state[client], pos = read_var_uint(state_vector, pos)
    except DecodeError as exc:
        raise UpdateError(f"malformed state vector: {exc}") from None
    if pos != len(state_vector):
        raise UpdateError(f"malformed state vector: {len(state_vector) - pos} trailing bytes")
    return state
