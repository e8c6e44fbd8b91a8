"""strategy: book + position + config -> target quotes, for the markets of its shard."""
