"""The Redis Streams bus: client construction and the bundled valkey-server."""
