"""The recorder: consumes market data and dead letters from Redis Streams into ClickHouse, exactly once."""
