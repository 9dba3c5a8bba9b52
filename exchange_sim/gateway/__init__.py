"""Binance USD-M futures REST gateway in front of the ZeroMQ venue
(``exchange-sim gateway``; docs/binance-gateway.md, docs/adr/0015-binance-gateway.md).

The gateway is a client of the venue like any bot: every command goes through
the server's one door and is journaled there; it keeps no state a restart
could lose (its venue sessions are re-opened on the next request). It needs
the optional ``gateway`` extra (aiohttp); the venue's core never imports it.
"""
