"""Redis: connection, the embedded server, key names, Lua scripts, account records,
sessions and the sign-in throttle."""
