-- Ids as decimal strings: Lua's numbers are doubles, exact only up to 2^53, and Redis's
-- counters go to 2^63 - 1. Prepended to publish.lua and sync.lua (one copy for both), with the
-- byte accounting of --history-bytes that publish.lua uses.
local MAX_ID = '9223372036854775807'

-- Whether decimal string a (no leading zeros) is greater than b.
local function greater(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end

-- The larger of two ids.
local function larger(a, b)
  if greater(a, b) then return a end
  return b
end

-- n + 1, as a decimal string.
local function incremented(n)
  local i = #n
  while i > 0 and string.sub(n, i, i) == '9' do i = i - 1 end
  if i == 0 then return '1' .. string.rep('0', #n) end
  return string.sub(n, 1, i - 1) .. string.char(string.byte(n, i) + 1) .. string.rep('0', #n - i)
end

-- A counter as Redis holds it, or an id as a caller gives it: decimal digits, no sign and no
-- leading zeros; anything else was not written by these scripts and is an error.
local function checked(text, what)
  if text == '0' or (string.match(text, '^[1-9]%d*$') and not greater(text, MAX_ID)) then
    return text
  end
  return error({err = 'ERR ' .. what .. ' does not hold an id: ' .. text})
end

-- The id of the stream's newest entry ('0': none): the counter may be lost or set back while
-- the stream holds higher ids, and numbering must go on above them.
local function top_of(stream)
  local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
  if not top then return '0' end
  return checked(string.match(top[1], '^(%d+)-') or '0', stream)
end

-- The bytes a stream entry holds, as --history-bytes counts them: its values (data, event name,
-- own id, retry), from the flat field list {name, value, ...} (a retry may come as a number).
local function entry_size(fields)
  local size = 0
  for i = 2, #fields, 2 do size = size + #tostring(fields[i]) end
  return size
end

-- What the stream's entries hold, kept in the key beside it. Counted afresh, a page at a time,
-- when that key is missing or not a count (a stream an earlier version wrote, or the key
-- deleted): exact either way, and the full count is paid once.
local function stream_bytes(stream, key)
  local stored = tonumber(redis.call('GET', key) or '')
  if stored and stored >= 0 and stored == math.floor(stored) then return stored end
  local total, start = 0, '-'
  repeat
    local page = redis.call('XRANGE', stream, start, '+', 'COUNT', 100)
    for _, entry in ipairs(page) do total = total + entry_size(entry[2]) end
    if #page > 0 then start = '(' .. page[#page][1] end
  until #page < 100
  return total
end

-- Drops the oldest entries while the stream holds more than `history` entries or more than
-- `history_bytes` bytes: their sizes are read oldest first, then one XTRIM drops them. Returns
-- the entries and bytes left; an empty stream holds 0 bytes whatever the count said.
local function trimmed(stream, kept, bytes, history, history_bytes)
  local dropped, start = 0, '-'
  while kept - dropped > 0 and (kept - dropped > history or bytes > history_bytes) do
    local oldest = redis.call('XRANGE', stream, start, '+', 'COUNT', 1)[1]
    bytes = bytes - entry_size(oldest[2])
    start = '(' .. oldest[1]
    dropped = dropped + 1
  end
  if dropped > 0 then redis.call('XTRIM', stream, 'MAXLEN', '=', kept - dropped) end
  if kept - dropped == 0 then bytes = 0 end
  return kept - dropped, bytes
end
