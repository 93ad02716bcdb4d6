"""HTTP: the aiohttp application (phone app channel, officer API, console feed, operations endpoints)."""
