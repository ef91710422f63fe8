"""The Lua scripts, one per atomic operation, shipped inside the wheel as `bridge_server.lua`."""
