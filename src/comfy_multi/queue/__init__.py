"""The job queue: model, lifecycle calls (Lua-backed), read views, events, workers."""
