-- Whether a channel has readers on any instance, and which instance runs its hook: one call,
-- atomic, so two instances never both take a change for their own, and a change made while a
-- hook runs is seen by its instance when the hook ends (folded: one hook at a time).
-- KEYS: 1 the instances with readers (a sorted set: instance -> its lease's end, ms),
--       2 the hook's state (a hash: ran = the state the last hook was run for, 1 or 0;
--         holder = the instance running one; until = the end of the holder's lease, ms)
-- ARGV: 1 the caller's instance id, 2 '1' it has readers, '0' it has none, '' it only looks,
--       3 the lease in ms, 4 '1' while the caller runs this channel's hook, else '0'
-- Returns {occupied, action}: occupied '1' or '0' over every live instance; action 'run'
-- (the caller now holds the hook and runs the one for `occupied`), 'busy' (another instance
-- runs one and looks again when it ends) or 'idle' (nothing to run).
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local me, lease = ARGV[1], tonumber(ARGV[3])
if ARGV[2] == '1' then
  redis.call('ZADD', KEYS[1], now + lease, me)
elseif ARGV[2] == '0' then
  redis.call('ZREM', KEYS[1], me)
end
-- An instance that stopped renewing (it died) no longer counts.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local occupied = '0'
if redis.call('ZCARD', KEYS[1]) > 0 then occupied = '1' end
local hook = redis.call('HMGET', KEYS[2], 'ran', 'holder', 'until')
local ran, holder, ends = hook[1] or '0', hook[2], tonumber(hook[3] or '0')
if holder == me and ARGV[4] ~= '1' then holder = nil end -- the caller's hook has ended
if holder and ends > now then
  if holder == me then redis.call('HSET', KEYS[2], 'until', now + lease) end
  return {occupied, 'busy'}
end
if occupied ~= ran then
  redis.call('HSET', KEYS[2], 'ran', occupied, 'holder', me, 'until', now + lease)
  return {occupied, 'run'}
end
if occupied == '0' then
  redis.call('DEL', KEYS[2]) -- vacant and told so: nothing left to keep
else
  redis.call('HDEL', KEYS[2], 'holder', 'until')
end
return {occupied, 'idle'}
