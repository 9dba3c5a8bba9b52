"""A small trading bot written only against CCXT's unified API.

Nothing here knows about exchange-sim: the same ``run`` drives a real
exchange's testnet through ``import ccxt`` (e.g. ``run(ccxt, "binanceusdm",
{"apiKey": ..., "secret": ...})`` after ``set_sandbox_mode``) and the
sandbox through the facade, with only the import line and the config
changed::

    from clients import ccxt                       # was: import ccxt
    run(ccxt, "exchangesim", {"apiKey": "2:demo-key-taker-2",
                              "urls": {"api": {"orders": "tcp://127.0.0.1:7001",
                                               "marketData": "tcp://127.0.0.1:7002"}}})

What it does, in the habits of real ccxt bots: load markets, read the last
price and the free USDT, size an order with ``amount_to_precision``, rest a
post-only bid below the market and cancel it, buy at market, read the
position, close it reduce-only, and handle the refusals every bot meets
(``InsufficientFunds``, ``InvalidOrder``, ``NetworkError`` with retries).
It returns a report of what it saw instead of printing only, so a test can
check it.
"""

from __future__ import annotations

import time


def retrying(ccxt, fn, *args, retries: int = 2, pause: float = 0.05, **kw):
    """Call ``fn``, retrying on ccxt.NetworkError (timeouts, rate limits)."""
    for attempt in range(retries + 1):
        try:
            return fn(*args, **kw)
        except ccxt.NetworkError:
            if attempt == retries:
                raise
            time.sleep(pause * (2 ** attempt))


def run(ccxt, exchange_id: str, config: dict, symbol: str = "BTC/USDT:USDT", notional: float = 1_000.0) -> dict:
    report: dict = {"exchange": exchange_id, "symbol": symbol, "errors": {}}
    exchange = getattr(ccxt, exchange_id)(config)
    try:
        retrying(ccxt, exchange.load_markets)
        market = exchange.market(symbol)
        report["market"] = {k: market[k] for k in ("id", "type", "linear", "contractSize", "maker", "taker")}

        ticker = retrying(ccxt, exchange.fetch_ticker, symbol)
        last = ticker["last"]
        report["last"] = last
        free = exchange.fetch_balance()["USDT"]["free"]
        report["free_before"] = free

        amount = float(exchange.amount_to_precision(symbol, notional / last))
        report["amount"] = amount

        # 1. a post-only bid 1% under the market: rests, shows up open, is cancelled
        bid_price = float(exchange.price_to_precision(symbol, last * 0.99))
        bid = exchange.create_order(symbol, "limit", "buy", amount, bid_price,
                                    {"postOnly": True, "clientOrderId": "ccxt-bot-bid-1"})
        report["bid"] = {k: bid[k] for k in ("id", "clientOrderId", "status", "price", "amount", "remaining")}
        report["open_ids"] = [o["id"] for o in exchange.fetch_open_orders(symbol)]
        cancelled = exchange.cancel_order(bid["id"], symbol)
        report["cancelled_status"] = cancelled["status"]
        report["open_after_cancel"] = len(exchange.fetch_open_orders(symbol))

        # 2. buy at market, read the position
        buy = exchange.create_order(symbol, "market", "buy", amount)
        report["buy"] = {k: buy[k] for k in ("status", "filled", "remaining", "average")}
        positions = exchange.fetch_positions([symbol])
        report["position"] = [{k: p[k] for k in ("side", "contracts", "entryPrice", "marginMode",
                                                 "liquidationPrice", "unrealizedPnl")} for p in positions]

        # 3. close it, reduce-only; a second reduce-only sell has nothing to reduce
        close = exchange.create_order(symbol, "market", "sell", amount, None, {"reduceOnly": True})
        report["close"] = {k: close[k] for k in ("status", "filled", "average")}
        report["positions_after"] = len(exchange.fetch_positions([symbol]))
        try:
            exchange.create_order(symbol, "market", "sell", amount, None, {"reduceOnly": True})
            report["errors"]["reduce_only_when_flat"] = None
        except ccxt.InvalidOrder as exc:
            report["errors"]["reduce_only_when_flat"] = type(exc).__name__

        # 4. the refusals a bot handles
        ask = exchange.fetch_order_book(symbol, 1)["asks"][0][0]
        try:  # post-only at the ask would take liquidity
            exchange.create_order(symbol, "limit", "buy", amount, ask, {"postOnly": True})
            report["errors"]["post_only_cross"] = None
        except ccxt.InvalidOrder as exc:
            report["errors"]["post_only_cross"] = type(exc).__name__
        free = exchange.fetch_balance()["USDT"]["free"]
        too_big = min(free * 20 / last, market["limits"]["amount"]["max"])
        try:  # twenty times the free margin
            exchange.create_order(symbol, "limit", "buy", float(exchange.amount_to_precision(symbol, too_big)),
                                  bid_price)
            report["errors"]["too_big"] = None
        except ccxt.InsufficientFunds as exc:
            report["errors"]["too_big"] = type(exc).__name__

        trades = exchange.fetch_my_trades(symbol)
        report["my_trades"] = [(t["side"], t["amount"], t["takerOrMaker"]) for t in trades]
        report["free_after"] = exchange.fetch_balance()["USDT"]["free"]
    except ccxt.NetworkError as exc:
        report["stopped"] = f"{type(exc).__name__}: {exc}"
    finally:
        close_fn = getattr(exchange, "close", None)
        if close_fn is not None:
            close_fn()
    return report


if __name__ == "__main__":  # python tests/integration/ccxt_bot.py  (with `exchange-sim serve` running)
    import json

    from clients import ccxt  # was: import ccxt

    print(json.dumps(run(ccxt, "exchangesim", {"apiKey": "2:demo-key-taker-2"}), indent=2))
