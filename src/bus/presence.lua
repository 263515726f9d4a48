-- Presence over every instance (--presence with --redis): one call, atomic, so a join or a
-- leave is announced exactly once whichever instances change at the same time.
-- Counts are kept by field: 'a' the anonymous streams, 'u:USER' a user's streams; '#' all.
-- KEYS: 1 the instances with streams on the channel (a sorted set: instance -> its lease's
--         end, ms), 2 the counts over every live instance (a hash), 3 the caller's share (a
--         hash, the same fields without '#')
-- ARGV: 1 the caller's instance id, 2 the lease in ms, 3 the share keys' prefix (an
--       instance's share is this followed by its id), 4 the Pub/Sub channel announcements go
--       to, 5 the channel's name, 6 '1' when the pairs below are the caller's whole share
--       (a field left out is 0), else '0'; then pairs: field, the caller's streams now.
-- An instance whose lease ended (it died) is counted out first, and the leaves that makes are
-- announced. Returns the counts over every live instance, as HGETALL does.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local me, lease, shares, topic, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local announced = {}

-- Adds `delta` streams to `field` over every instance, and notes the join or leave it makes:
-- a user joins with its first stream and leaves with its last; each anonymous stream is a
-- reader of its own.
local function add(field, delta)
  if delta == 0 then return end
  local after = redis.call('HINCRBY', KEYS[2], field, delta)
  if after <= 0 then redis.call('HDEL', KEYS[2], field) end
  if redis.call('HINCRBY', KEYS[2], '#', delta) <= 0 then redis.call('HDEL', KEYS[2], '#') end
  local user = 'null'
  if field ~= 'a' then user = cjson.encode(string.sub(field, 3)) end
  local times, kind = 0, 'join'
  if field == 'a' then
    times = math.abs(delta)
    if delta < 0 then kind = 'leave' end
  elseif after > 0 and after - delta <= 0 then
    times = 1
  elseif after <= 0 and after - delta > 0 then
    times, kind = 1, 'leave'
  end
  for _ = 1, times do table.insert(announced, {kind, user}) end
end

-- Instances that stopped renewing (they died) no longer count.
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  if gone ~= me then
    local share = redis.call('HGETALL', shares .. gone)
    for i = 1, #share, 2 do add(share[i], -tonumber(share[i + 1])) end
    redis.call('DEL', shares .. gone)
    redis.call('ZREM', KEYS[1], gone)
  end
end

if ARGV[6] == '1' then
  local given = {}
  for i = 7, #ARGV, 2 do given[ARGV[i]] = true end
  local old = redis.call('HGETALL', KEYS[3])
  for i = 1, #old, 2 do
    if not given[old[i]] then
      add(old[i], -tonumber(old[i + 1]))
      redis.call('HDEL', KEYS[3], old[i])
    end
  end
end
for i = 7, #ARGV, 2 do
  local field, count = ARGV[i], tonumber(ARGV[i + 1])
  local before = tonumber(redis.call('HGET', KEYS[3], field) or '0')
  if count > 0 then
    redis.call('HSET', KEYS[3], field, count)
  else
    redis.call('HDEL', KEYS[3], field)
  end
  add(field, count - before)
end

-- A channel nobody reads any more leaves no keys behind for long: every key of it is renewed
-- with each call, and all go together. That includes the share of each instance listed, not
-- only the caller's: a dead instance's share must last until a call counts it out, or the
-- counts would keep its readers for as long as calls keep them alive, with no leave ever.
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('ZADD', KEYS[1], now + lease, me)
else
  redis.call('ZREM', KEYS[1], me)
end
for _, one in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  redis.call('PEXPIRE', shares .. one, lease * 4)
end
for i = 1, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], lease * 4) end
end
-- Each announcement tells the streams once every change of this call is counted (an
-- instance counted out may take several users at once).
local streams = tonumber(redis.call('HGET', KEYS[2], '#') or '0')
for _, one in ipairs(announced) do
  local data = '{"user":' .. one[2] .. ',"streams":' .. streams .. '}'
  redis.call('PUBLISH', topic, cjson.encode({channel = channel, event = one[1], data = data}))
end
return redis.call('HGETALL', KEYS[2])
