"""The job queue: model, lifecycle calls (Lua-backed), read views, events, workers,
and the small reads the faces show (job records, room counts, tallies)."""
