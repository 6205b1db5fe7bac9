-- One KeysReader batch: ARGV = mode ('scan'|'key'|'keys'), cursor, pattern, readValue ('1'|'0'), count,
-- then for 'keys' the keys to read (key events: a missing key is kept, as type 'none'; so is the one key
-- of 'key' mode, noScan, which RedisGears reports as a record of type 'empty').
-- Returns {next_cursor, key1, type1, value1, key2, ...}; the value is left out when readValue is '0'.
-- Mode 'strings' is MGET for a Redis Cluster node, where one MGET may not span slots: {value1, value2, ...},
-- false (nil) for a key that is missing, not a string or not readable by the caller (read by type afterwards).
-- A key this node no longer serves (a resharding moved it between SCAN and this read) is an error naming
-- the key, never a silently missing record.
local mode, cursor, pattern, read_value, count = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1', ARGV[5]
local function not_here(k, err)
  return redis.error_reply('ERR KeysReader could not read key \'' .. k .. '\' on this shard (moved by a resharding, or the cluster is down): ' .. tostring(err))
end
if mode == 'strings' then
  -- One GET per key (0.7 us of Redis' time each) where the generic path below costs four calls (3.3 us).
  local out = {}
  for i = 6, #ARGV do
    local k = ARGV[i]
    local v = redis.pcall('GET', k)
    if type(v) == 'table' then
      if string.sub(v.err, 1, 9) ~= 'WRONGTYPE' and redis.acl_check_cmd('GET', k) then return not_here(k, v.err) end
      v = false
    end
    out[#out + 1] = v
  end
  return out
end
local keys
if mode == 'scan' then
  local r = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', count)
  cursor, keys = r[1], r[2]
elseif mode == 'keys' then
  cursor, keys = '0', {}
  for i = 6, #ARGV do keys[#keys + 1] = ARGV[i] end
else
  cursor, keys = '0', {pattern}
end
local keep_missing = mode == 'keys' or mode == 'key'
-- TYPE of a missing key would fire a keymiss notification; OBJECT ENCODING does not: jgears' own reads
-- must not trigger registrations that take keymiss events.
-- An error (the key is not served here: see not_here) is returned as the second value.
local function type_of(k)
  local enc = redis.pcall('OBJECT', 'ENCODING', k)
  if not enc then return 'none' end
  if type(enc) == 'table' and enc.err then return nil, enc.err end
  return redis.call('TYPE', k)['ok']
end
local out = {cursor}
for _, k in ipairs(keys) do
  -- The caller's ACL user may not read every key: those are left out (a key event gets type 'denied').
  local t, err
  if redis.acl_check_cmd('GET', k) then t, err = type_of(k) else t = 'denied' end
  if err then return not_here(k, err) end
  if (t ~= 'none' and t ~= 'denied') or (keep_missing and (mode == 'keys' or t == 'none')) then
    out[#out + 1] = k
    out[#out + 1] = t
    if read_value then
      local v
      if t == 'string' then v = redis.call('GET', k)
      elseif t == 'hash' then v = redis.call('HGETALL', k)
      elseif t == 'list' then v = redis.call('LRANGE', k, 0, -1)
      else v = false end  -- as in RedisGears: sets, zsets, streams and module types have no value
      out[#out + 1] = v
    end
  end
end
return out
