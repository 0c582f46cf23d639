"""The Lua scripts of the Redis store: every write that must be atomic is one script.

Each script touches only one document's keys (the ``{doc}`` hash tag: one Cluster slot), so
Redis runs it atomically on a single instance and on a Cluster alike.  They live apart from
:class:`~server.store.redis.RedisStore` so the server-side half of each write — what Redis
checks and changes in one step — can be read (and reviewed) on its own; the key layout they
work on is described in :mod:`server.store.redis`.
"""

from __future__ import annotations


# Every write script starts by claiming the document's engine (KEYS[1]) and refusing the other.
def _claim_kind(kind: str) -> str:
    """Lua that records ``kind`` (a Lua expression) on first write and refuses a mismatch."""
    return f"""
redis.call('SET', KEYS[1], {kind}, 'NX')
local stored = redis.call('GET', KEYS[1])
if stored ~= {kind} then
  return redis.error_reply('KIND document is a ' .. stored .. ' document, not ' .. {kind})
end
"""


# KEYS: kind, log, version.  ARGV: kind, origin, author, payload...  Returns the new ids.
# OT records appended without the sequencer (server-side edits) still count in the version;
# CRDT records are counted the same way, which numbers them for history (field n).
APPEND = _claim_kind("ARGV[1]") + """
local count = #ARGV - 3
local n = redis.call('INCRBY', KEYS[3], count) - count
local ids = {}
for i = 4, #ARGV do
  n = n + 1
  ids[#ids + 1] = redis.call('XADD', KEYS[2], '*', 'o', ARGV[2], 'p', ARGV[i], 'a', ARGV[3],
                             'n', n)
end
return ids
"""

# The OT sequencer (ShareDB's submit loop): commit one OT record only at the expected version.
# KEYS: kind, log, version, fence, dedup.  ARGV: version, origin, payload, seq ('' = no dedup),
# fence ('' = no fencing: sequencer mode).  Returns {status, n}: {0, v} committed at v,
# {1, current} conflict, {2, v} this src/seq was committed already at v (a retried write whose
# reply was lost: never XADDed twice), {3, fence} refused: a newer home holds the document.
OT_COMMIT = _claim_kind("'ot'") + """
if ARGV[5] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[5] then
  return {3, tonumber(redis.call('GET', KEYS[4]) or '0')}
end
if ARGV[4] ~= '' then
  local seen = redis.call('GET', KEYS[5])
  if seen then
    local colon = string.find(seen, ':', 1, true)
    if string.sub(seen, 1, colon - 1) == ARGV[4] then
      return {2, tonumber(string.sub(seen, colon + 1))}
    end
  end
end
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
if current ~= tonumber(ARGV[1]) then
  return {1, current}
end
redis.call('SET', KEYS[3], current + 1)
redis.call('XADD', KEYS[2], '*', 'o', ARGV[2], 'p', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[5], ARGV[4] .. ':' .. current, 'PX', 86400000)
end
return {0, current}
"""

# OT compaction.  KEYS: kind, log, snap.  ARGV: snapshot, its version, keep_from.  Trims the
# records applied at versions < keep_from (the log is in version order: OT_COMMIT appends at
# the counter) and stores the snapshot covering the last trimmed id; never moves backwards.
OT_COMPACT = _claim_kind("'ot'") + """
local old = tonumber(redis.call('HGET', KEYS[3], 'v') or '-1')
if old >= tonumber(ARGV[2]) then
  return 0
end
local keep_from, last, start = tonumber(ARGV[3]), nil, '-'
while true do
  local batch = redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', 200)
  if #batch == 0 then break end
  local stop = false
  for _, entry in ipairs(batch) do
    local fields, payload = entry[2], nil
    for i = 1, #fields, 2 do
      if fields[i] == 'p' then payload = fields[i + 1] end
    end
    if payload then
      local v = tonumber(string.match(payload, '^{"v":(%d+)'))
      if v == nil or v >= keep_from then stop = true break end
    end
    last = entry[1]
  end
  if stop then break end
  start = '(' .. batch[#batch][1]
end
if last == nil then
  return 0
end
redis.call('HSET', KEYS[3], 'data', ARGV[1], 'id', last, 'v', ARGV[2])
local dash = string.find(last, '-', 1, true)
redis.call('XTRIM', KEYS[2], 'MINID', string.sub(last, 1, dash - 1) .. '-' ..
           (tonumber(string.sub(last, dash + 1)) + 1))
redis.call('XADD', KEYS[2], '*', 's', last)
return 1
"""

# KEYS: kind, log, snap, hist.  ARGV: kind, snapshot, covered id, covered ms, covered seq,
# keep history ('1'/'0'), trim ms, trim seq ('', '': trim nothing), now (ms), then the ids of
# redundant checkpoints to drop.  With history kept, the replaced snapshot becomes a checkpoint
# and the log is trimmed only up to the trim id (a checkpoint), dropping older checkpoints.
COMPACT = _claim_kind("ARGV[1]") + """
local function before(id, ms, seq)
  local dash = string.find(id, '-', 1, true)
  local a, b = tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
  return a < ms or (a == ms and b < seq)
end
local old = redis.call('HMGET', KEYS[3], 'id', 'data', 'n', 't')
if old[1] and not before(old[1], tonumber(ARGV[4]), tonumber(ARGV[5])) then
  return 0
end
local n = ''
local entry = redis.call('XRANGE', KEYS[2], ARGV[3], ARGV[3])
if #entry == 1 then
  local f = entry[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'n' then n = f[i + 1] end
  end
end
if ARGV[6] == '1' and old[1] then
  redis.call('HSET', KEYS[4], 'd:' .. old[1], old[2], 'n:' .. old[1], old[3] or '',
             't:' .. old[1], old[4] or '')
end
redis.call('HSET', KEYS[3], 'data', ARGV[2], 'id', ARGV[3], 'n', n, 't', ARGV[9])
if ARGV[7] ~= '' then
  local ms, seq = tonumber(ARGV[7]), tonumber(ARGV[8])
  redis.call('XTRIM', KEYS[2], 'MINID', ms .. '-' .. (seq + 1))
  for _, field in ipairs(redis.call('HKEYS', KEYS[4])) do
    local id = string.sub(field, 3)
    if before(id, ms, seq) or id == ARGV[3] then
      redis.call('HDEL', KEYS[4], field)
    end
  end
end
for i = 10, #ARGV do
  redis.call('HDEL', KEYS[4], 'd:' .. ARGV[i], 'n:' .. ARGV[i], 't:' .. ARGV[i])
end
redis.call('XADD', KEYS[2], '*', 's', ARGV[3])
return 1
"""
