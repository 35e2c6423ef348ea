"""The collector (producer): venue WebSocket frames -> validated, batched entries on Redis Streams.

Where things are: `decode` (a tick enters and is validated), `sequence` (trade ids, gaps), `backfill` +
`rest` (gaps closed from REST history), `batcher` + `writer` (flushes to Redis), `connection` (WebSockets,
reconnects), `service` (the process), `app` (composition root `build_collector`).
"""
