-- Publishes a run of events to one channel, atomically, so every instance numbers alike.
-- KEYS: 1 the counter, 2 the stream (history), 3 the epoch, 4 the bytes the stream holds
-- ARGV: 1 history to keep, 2 the Pub/Sub channel, 3 the channel's name,
--       4 the highest id the caller has seen, 5 an epoch to use if Redis holds none,
--       6 history bytes to keep, 7 PUBLISH, or SPUBLISH in a Redis Cluster (ARGV 2 is then the
--       channel's shard channel, in its keys' slot: a script may publish to no other),
--       8.. one JSON draft per event: {"d": [data pieces], "e": event, "i": own id, "r": retry ms}
-- Returns {epoch, id of the first event}, ids as strings; the run's ids are consecutive.
local epoch = redis.call('GET', KEYS[3])
local stored = redis.call('GET', KEYS[1])
if not epoch or not stored then
  -- No counter: a new channel, or Redis lost its data; the new epoch tells the instances.
  epoch = ARGV[5]
  redis.call('SET', KEYS[3], epoch)
end
-- Ids never go backwards: numbering goes on above the counter, the stream's newest entry and
-- the highest id the caller saw, whichever is highest.
local counter = larger(checked(stored or '0', KEYS[1]), top_of(KEYS[2]))
counter = larger(counter, checked(ARGV[4], 'the caller'))
local history, history_bytes = tonumber(ARGV[1]), tonumber(ARGV[6])
local kept, bytes = redis.call('XLEN', KEYS[2]), stream_bytes(KEYS[2], KEYS[4])
local publish = ARGV[7]
if publish ~= 'PUBLISH' and publish ~= 'SPUBLISH' then
  return error({err = 'ERR not a publish command: ' .. publish})
end
local first
for i = 8, #ARGV do
  local draft = cjson.decode(ARGV[i])
  if counter == MAX_ID then return error({err = 'ERR ' .. KEYS[1] .. ' has no ids left'}) end
  counter = incremented(counter)
  -- Saved at each event: should a later command fail, the ids used so far stay used.
  redis.call('SET', KEYS[1], counter)
  first = first or counter
  -- A ticker's {seq} shows this very id: the data arrives cut where it goes.
  local data = table.concat(draft.d, counter)
  local fields = {'d', data}
  if draft.e then table.insert(fields, 'e'); table.insert(fields, draft.e) end
  if draft.i then table.insert(fields, 'i'); table.insert(fields, draft.i) end
  if draft.r then table.insert(fields, 'r'); table.insert(fields, draft.r) end
  redis.call('XADD', KEYS[2], counter .. '-0', unpack(fields))
  -- Trimmed at each event, not once for the run: a run of large events never sits in memory
  -- whole. An event larger than the bound goes out but is not kept.
  kept, bytes = trimmed(KEYS[2], kept + 1, bytes + entry_size(fields), history, history_bytes)
  -- Saved at each event too, so that it always tells what the stream holds.
  redis.call('SET', KEYS[4], string.format('%d', bytes))
  redis.call(publish, ARGV[2], cjson.encode({c = ARGV[3], n = counter, p = epoch, d = data,
    e = draft.e, i = draft.i, r = draft.r}))
end
return {epoch, first}
