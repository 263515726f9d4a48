-- Ids as decimal strings: Lua's numbers are doubles, exact only up to 2^53, and Redis's
-- counters go to 2^63 - 1. Prepended to publish.lua and sync.lua (one copy for both).
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
