"""The simulated venue: Binance-compatible streams and REST, deterministic, with ground truth and faults.

Where things are: `app` (composition root, `build_venue`, the run loop), `market` (ticks of trades and book
updates), `process` (the seeded price processes), `ground_truth` (every trade, on disk before the wire),
`hub` (WebSocket subscriptions and fan-out), `wire` (Binance JSON and frames), `rest` (Binance REST and the
admin API), `faults` (fault injection), `symbols` (instrument specs), `trading/` (order entry, matching,
account and margin, signed USD-M futures REST, listenKey and the user-data stream, their ground truth).

Facts clients rely on: trade ids (aggTrade `a` = `f` = `l`, Spot `t`) and bookTicker `u` run 1, 2, 3, ... per
symbol with no gaps in the ground truth, across restarts; trades are generated whether or not anyone is
subscribed; every id in [1, last_id] is served by REST; malformed frames from the fault injector carry id 0.
"""
