-- Publishes a run of events to one channel, atomically, so every instance numbers alike.
-- KEYS: 1 the counter, 2 the stream (history), 3 the epoch
-- ARGV: 1 history to keep, 2 the Pub/Sub channel, 3 the channel's name,
--       4 the highest id the caller has seen, 5 an epoch to use if Redis holds none,
--       6.. one JSON draft per event: {"d": [data pieces], "e": event, "i": own id, "r": retry ms}
-- Returns {epoch, id of the first event}; the run's ids are consecutive.
local epoch = redis.call('GET', KEYS[3])
if not epoch or redis.call('EXISTS', KEYS[1]) == 0 then
  -- No counter: a new channel, or Redis lost its data. Ids never go backwards: numbering
  -- resumes above the highest id the caller saw, and the new epoch tells the instances.
  epoch = ARGV[5]
  redis.call('SET', KEYS[3], epoch)
  redis.call('SET', KEYS[1], ARGV[4])
elseif tonumber(redis.call('GET', KEYS[1])) < tonumber(ARGV[4]) then
  redis.call('SET', KEYS[1], ARGV[4])
end
local first
for i = 6, #ARGV do
  local draft = cjson.decode(ARGV[i])
  local id = redis.call('INCR', KEYS[1])
  first = first or id
  local n = tostring(id)
  -- A ticker's {seq} shows this very id: the data arrives cut where it goes.
  local data = table.concat(draft.d, n)
  local fields = {'d', data}
  if draft.e then table.insert(fields, 'e'); table.insert(fields, draft.e) end
  if draft.i then table.insert(fields, 'i'); table.insert(fields, draft.i) end
  if draft.r then table.insert(fields, 'r'); table.insert(fields, draft.r) end
  redis.call('XADD', KEYS[2], 'MAXLEN', '=', ARGV[1], n .. '-0', unpack(fields))
  redis.call('PUBLISH', ARGV[2], cjson.encode({c = ARGV[3], n = n, p = epoch, d = data,
    e = draft.e, i = draft.i, r = draft.r}))
end
return {epoch, first}
