"""What more than one dora process needs: domain types, the Kalshi client, the Redis keys and
codecs, settings, the process runtime and the pure engines."""
