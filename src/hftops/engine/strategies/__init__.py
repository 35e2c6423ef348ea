"""Demo strategies shipped with the platform (deterministic: same events in, same intents out)."""
