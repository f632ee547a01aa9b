-- A consistent copy of every key of the platform, for backups.
-- KEYS: none (the prefix comes in ARGV: this script reads the whole keyspace
--       of the platform, which is why it serves backups only)
-- ARGV[1]: the key prefix (store/keys.py PREFIX)
-- Returns a flat list: key, pttl, DUMP payload, key, pttl, payload, ...
local out = {}
local cursor = "0"
repeat
  local page = redis.call("SCAN", cursor, "MATCH", ARGV[1] .. "*", "COUNT", 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do
    out[#out + 1] = key
    out[#out + 1] = redis.call("PTTL", key)
    out[#out + 1] = redis.call("DUMP", key)
  end
until cursor == "0"
return out
