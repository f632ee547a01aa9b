"""Redis: connection, the embedded server, key names, Lua scripts, account records."""
