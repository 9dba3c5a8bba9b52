"""Issue 14's acceptance run: a ccxt bot that sets its leverage, reads
candles, enters with an attached stop-loss and, after both it and the venue
were killed and restarted, reconciles its trades and orders from the venue.

``swing_bot`` is written as a bot author writes against ccxt
(``getattr(ccxt, exchange_id)(config)``, unified methods and params only):
only the import and the config tell it that the venue is exchange-sim. The
venue is stopped with SIGKILL, so what the bot finds after the restart is
what the journal made durable.

Numbers (default config): BTC-PERP tick 0.1, lot 0.001, BTC index 60,000;
the maker (account 1) quotes 59,990 / 60,010 after one trade with account 3
at 60,000; the bot is account 2.
"""

from __future__ import annotations

from integration_helpers import ADMIN_KEY, KEYS, cfg, start_server, wait_for

from clients import Client
from clients import ccxt

SYMBOL = "BTC/USDT:USDT"
JOURNAL = {"journal": {"snapshot_every": 0}}


def swing_bot(ccxt, exchange_id: str, config: dict) -> dict:
    """Enter long at 5x with a protective stop-loss 5% under the entry."""
    exchange = getattr(ccxt, exchange_id)(config)
    try:
        exchange.load_markets()
        exchange.set_leverage(5, SYMBOL)
        candles = exchange.fetch_ohlcv(SYMBOL, "1m", limit=10)
        last_close = candles[-1][4]
        amount = exchange.amount_to_precision(SYMBOL, 1_000 / last_close)  # ~$1,000 of BTC
        order = exchange.create_order(SYMBOL, "market", "buy", float(amount), None, {
            "stopLoss": {"triggerPrice": exchange.price_to_precision(SYMBOL, last_close * 0.95)},
        })
        return {"order": order, "candles": candles, "amount": float(amount),
                "trades": exchange.fetch_my_trades(SYMBOL), "open": exchange.fetch_open_orders(SYMBOL)}
    finally:
        exchange.close()


def reconcile(ccxt, exchange_id: str, config: dict, entry_id: str) -> dict:
    """What a restarted bot asks before it trades again."""
    exchange = getattr(ccxt, exchange_id)(config)
    try:
        exchange.load_markets()
        return {"entry": exchange.fetch_order(entry_id, SYMBOL), "trades": exchange.fetch_my_trades(SYMBOL),
                "open": exchange.fetch_open_orders(SYMBOL), "leverage": exchange.fetch_leverage(SYMBOL),
                "positions": exchange.fetch_positions([SYMBOL])}
    finally:
        exchange.close()


def _quote(sp) -> None:
    maker, other = Client(sp.orders, 1, KEYS[1], timeout=5.0), Client(sp.orders, 3, KEYS[3], timeout=5.0)
    try:
        maker.sell("BTC-PERP", "0.001", "60000.0", tif="post_only")  # a trade, so a candle exists
        other.buy("BTC-PERP", "0.001", "60000.0", tif="ioc")
        maker.buy("BTC-PERP", "5", "59990.0")
        maker.sell("BTC-PERP", "5", "60010.0")
    finally:
        maker.close()
        other.close()


def test_a_ccxt_bot_sets_leverage_reads_candles_enters_with_a_stop_loss_and_reconciles_after_a_restart(tmp_path):
    data = tmp_path / "data"
    sp = start_server(tmp_path, args=("--data-dir", str(data)), sections=JOURNAL)
    try:
        _quote(sp)
        run = swing_bot(ccxt, "exchangesim", cfg(sp))
    finally:
        sp.proc.kill()  # kill -9: no shutdown snapshot, only the journal
        sp.proc.wait(10)

    assert run["candles"][-1][1:5] == [60000.0, 60000.0, 60000.0, 60000.0]  # one trade at 60,000
    order = run["order"]
    assert (order["status"], order["filled"], order["average"]) == ("closed", run["amount"], 60010.0)
    assert run["amount"] == 0.016  # $1,000 / 60,000 = 0.01667, truncated to the lot as ccxt does
    (stop,) = run["open"]  # the attached stop-loss, sized to the fill
    assert (stop["side"], stop["amount"], stop["triggerPrice"], stop["reduceOnly"]) == ("sell", 0.016, 57000.0, True)

    # both restarted: a new venue process from the data dir, a new bot object
    sp = start_server(tmp_path, args=("--data-dir", str(data)), sections=JOURNAL)
    admin = Client(sp.orders, 0, ADMIN_KEY, timeout=5.0)
    try:
        after = reconcile(ccxt, "exchangesim", cfg(sp), order["id"])
        assert (after["entry"]["status"], after["entry"]["filled"]) == ("closed", 0.016)
        assert [(t["order"], t["side"], t["amount"], t["price"]) for t in after["trades"]] == [
            (t["order"], t["side"], t["amount"], t["price"]) for t in run["trades"]] == [
            (order["id"], "buy", 0.016, 60010.0)]
        assert [o["id"] for o in after["open"]] == [stop["id"]]  # the stop-loss is still in place
        assert after["leverage"]["longLeverage"] == 5
        assert after["positions"][0]["contracts"] == 0.016

        # the price falls through the stop: it fires and closes the position
        admin.set_index_price("BTC", "56000")
        ex = ccxt.exchangesim(cfg(sp))
        try:
            wait_for(lambda: not ex.fetch_positions([SYMBOL]), 5, "the stop-loss to close the position")
            sides = [t["side"] for t in ex.fetch_my_trades(SYMBOL)]
            assert sides == ["buy", "sell"]
            assert ex.fetch_order(stop["id"], SYMBOL)["status"] == "closed"
        finally:
            ex.close()
    finally:
        admin.close()
        sp.stop()
