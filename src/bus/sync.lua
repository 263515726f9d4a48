-- What an instance needs to catch a channel up: the epoch, the counter and the kept events
-- after the newest it has. Also keeps ids from going backwards after Redis lost its data.
-- KEYS: 1 the counter, 2 the stream, 3 the epoch
-- ARGV: 1 the newest id the caller has (0: none), 2 an epoch to use if Redis holds none
-- Returns {epoch or false, counter, XRANGE of the events after ARGV[1]}, ids as strings.
local newest = checked(ARGV[1], 'the caller')
local epoch = redis.call('GET', KEYS[3])
local stored = redis.call('GET', KEYS[1])
local counter = larger(checked(stored or '0', KEYS[1]), top_of(KEYS[2]))
if newest ~= '0' and (not epoch or greater(newest, counter)) then
  -- Redis lost the channel (restarted empty): numbering resumes above what the caller saw.
  if not epoch then
    epoch = ARGV[2]
    redis.call('SET', KEYS[3], epoch)
  end
  counter = larger(counter, newest)
end
if counter ~= (stored or '0') then
  -- Never moves it back: `counter` is the largest of the stored one, the stream's newest id
  -- and the caller's.
  redis.call('SET', KEYS[1], counter)
end
local start = '(' .. newest .. '-0'
if newest == '0' then start = '-' end
return {epoch, counter, redis.call('XRANGE', KEYS[2], start, '+')}
