"""Redis: connection, the embedded server, key names and Lua scripts."""
