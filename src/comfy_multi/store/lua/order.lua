-- The dispatch order: the first jobs the claim rule would hand out, one
-- claim after another, if nothing else changed (pause and draining aside).
-- KEYS[1] prefix
-- ARGV[1] worker id ("" for a worker that runs everything), ARGV[2] how many
-- jobs at most, ARGV[3] look-ahead (as claims use)
-- Returns job ids, next first.
local w, n, look = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local mode = queue_mode()
local V = memory_view()
local fits = fits_worker(w)
local any = w == '' or redis.call('EXISTS', K.worker_nodes(w)) == 0
local out = {}
while #out < n do
  local id, u, c = next_job(V, mode, look, fits)
  if not id then break end
  if any and mode == 'fair' and V.rotating(c) then
    -- everyone left in the class takes turns: lay the turns out at once
    V.rotate(c, #out, nil, function(_, job, at)
      if at < n then out[at + 1] = job end
    end)
  else
    out[#out + 1] = id
    V.take(c, u, id)
  end
end
return out
