"""marketdata: WebSocket books and market facts for every enabled market, into Redis."""
