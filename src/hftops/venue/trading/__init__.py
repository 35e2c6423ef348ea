"""Order entry and account of the simulated venue (Binance USD-M futures subset).

Where things are: `service` (composition: `build_trading`), `matching` (order entry, matching against the
simulated book, resting orders), `book` (touch and modelled depth behind it), `account` (wallet, positions,
leverage, margin, fees), `auth` (API key, HMAC signature, recvWindow), `params` (request parameters),
`wire` (Binance JSON shapes), `journal` (the venue's own record of orders and fills, on disk), `userstream`
(listenKeys and the user-data WebSocket), `faults` (trading fault injection), `routes` (REST and admin).

This package imports nothing from `hftops.venue` except `symbols` and `wire`, so `venue.faults` can hold
the trading faults without an import cycle.
"""
