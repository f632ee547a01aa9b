-- Relay a running job's ComfyUI messages to its user in one round trip:
-- check the lease, keep the latest progress for pages that open mid-run,
-- and publish the messages (the hot path of live progress).
-- KEYS[1] prefix
-- ARGV[1] job id, ARGV[2] token, ARGV[3] worker id, ARGV[4] messages (a JSON
-- array), ARGV[5] latest progress data as JSON ("" when the batch has none)
-- Returns "ok" or why the lease is gone.
local id = ARGV[1]
local why = running_with(id, ARGV[2], ARGV[3])
if why ~= 'ok' then return why end
local f = redis.call('HMGET', K.job(id), 'user', 'client_id')
if ARGV[5] ~= '' then redis.call('HSET', K.job(id), 'progress', ARGV[5]) end
local client = 'null'
if f[2] and f[2] ~= '' then client = cjson.encode(f[2]) end
redis.call('PUBLISH', K.events_channel, '{"event":"comfy","user":' .. cjson.encode(f[1]) ..
  ',"job_id":' .. cjson.encode(id) .. ',"client_id":' .. client ..
  ',"ts":' .. NOW .. ',"messages":' .. ARGV[4] .. '}')
return 'ok'
