-- One KeysReader batch: ARGV = mode ('scan'|'key'), cursor, pattern, readValue ('1'|'0'), count.
-- Returns {next_cursor, key1, type1, value1, key2, ...}; the value is left out when readValue is '0'.
local mode, cursor, pattern, read_value, count = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1', ARGV[5]
local keys
if mode == 'scan' then
  local r = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', count)
  cursor, keys = r[1], r[2]
else
  cursor, keys = '0', {pattern}
end
local out = {cursor}
for _, k in ipairs(keys) do
  local t = redis.call('TYPE', k)['ok']
  if t ~= 'none' then
    out[#out + 1] = k
    out[#out + 1] = t
    if read_value then
      local v
      if t == 'string' then v = redis.call('GET', k)
      elseif t == 'hash' then v = redis.call('HGETALL', k)
      elseif t == 'list' then v = redis.call('LRANGE', k, 0, -1)
      elseif t == 'set' then v = redis.call('SMEMBERS', k)
      elseif t == 'zset' then v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
      elseif t == 'stream' then v = redis.call('XRANGE', k, '-', '+')
      else v = false end
      out[#out + 1] = v
    end
  end
end
return out
