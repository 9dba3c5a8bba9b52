"""The ccxt facade measured against the real ``ccxt`` package (the [test]
extra installs it): the error tree, the ``has`` keys, the base helpers'
results on the same inputs; then, against a real ``exchange-sim serve``,
every capability ``has`` claims, the params rule on every method that takes
``params``, batch orders, ccxt.pro's ``watch_*``, and three of ccxt's own
example programs ported with only their import and config changed
(``ccxt_examples/``).

Numbers (default config): BTC-PERP tick 0.1, lot 0.001; the maker
(account 1) quotes 59,990 / 60,010, 5 BTC each side; BTC index 60,000.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys

import ccxt as real_ccxt
import ccxt.pro as real_pro
import pytest
from ccxt.base import errors as real_errors

from ccxt_examples import create_cancel, reload_markets, watch_trades
from clients import Client
from clients import ccxt
from clients.ccxt import _base
from clients.ccxt import async_support as accxt
from clients.ccxt import errors as facade_errors
from clients.ccxt._base import CCXT_HAS_KEYS
from exchange_sim import Venue
from integration_helpers import ADMIN_KEY, cfg, quote, wait_for
from protocol import messages as m

BTC = "BTC/USDT:USDT"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))




# ---------------------------------------------------------------- errors


def _tree(hierarchy: dict, parent: str | None = None):
    for name, children in hierarchy.items():
        yield name, parent
        yield from _tree(children, name)


def test_error_tree_is_ccxts_and_catchable_as_ccxts():
    """Every class of ccxt's ``error_hierarchy`` exists in the facade with
    the same parent, and no other; with ccxt installed each facade class is
    also ccxt's, so ``except ccxt.InsufficientFunds`` catches the facade's."""
    tree = dict(_tree(real_errors.error_hierarchy))
    facade = {n: c for n, c in vars(facade_errors).items()
              if isinstance(c, type) and issubclass(c, facade_errors.BaseError)}
    assert set(facade) == set(tree)
    for name, parent in tree.items():
        cls = facade[name]
        own_parents = [b.__name__ for b in cls.__bases__ if b.__module__ == facade_errors.__name__]
        assert own_parents == ([parent] if parent else []), name
        assert issubclass(cls, getattr(real_errors, name)), name
    with pytest.raises(real_ccxt.InsufficientFunds):
        raise ccxt.InsufficientFunds("exchangesim insufficient_margin: ...", "insufficient_margin")
    with pytest.raises(real_ccxt.NetworkError):
        raise ccxt.RequestTimeout("exchangesim timed out")
    assert ccxt.InsufficientFunds("x", "insufficient_margin").reason == "insufficient_margin"


def test_facade_needs_no_ccxt():
    """Without the ccxt package the facade imports, trades its names and
    keeps the same tree (the classes are its own then)."""
    code = ("import sys; sys.modules['ccxt'] = None\n"
            "from clients import ccxt\n"
            "from clients.ccxt import async_support, pro\n"
            "assert ccxt.InsufficientFunds.__mro__[1] is ccxt.ExchangeError\n"
            "assert ccxt.BaseError.__bases__ == (Exception,)\n"
            "assert issubclass(ccxt.ChecksumError, ccxt.InvalidNonce)\n"
            "ex = ccxt.exchangesim({}); assert ex.safe_integer({'a': '5.0'}, 'a') == 5\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


# ------------------------------------------------------------------- has


def test_has_lists_every_key_of_ccxts_base_class():
    real_keys = set(real_ccxt.Exchange().has)
    assert set(CCXT_HAS_KEYS) == real_keys
    assert set(real_pro.Exchange().has) <= real_keys
    for cls in (ccxt.exchangesim, accxt.exchangesim):
        assert set(cls.has) == real_keys, set(cls.has) ^ real_keys
        assert all(v in (True, False, None, "emulated") for v in cls.has.values())
    # what the issue found claimed or missing
    for key in ("watchBalance", "fetchL2OrderBook", "createOrders", "ws", "sandbox"):
        assert key in ccxt.exchangesim.has
    assert ccxt.exchangesim.has["createStopLossOrder"] is True  # claimed, and checked below
    assert ccxt.exchangesim.has["ws"] is False and accxt.exchangesim.has["ws"] is True
    ex = ccxt.exchangesim({})
    with pytest.raises(ccxt.NotSupported, match="createTrailingAmountOrder"):
        ex.create_trailing_amount_order(BTC, "market", "sell", 0.01, None, 100)


class Blocking:
    """An asyncio exchange driven like a blocking one (each call run to
    completion on one event loop), so the checks below run on both classes."""

    def __init__(self, aex, loop):
        self._aex, self._loop = aex, loop

    def __getattr__(self, name):
        attr = getattr(self._aex, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            out = attr(*args, **kwargs)
            return self._loop.run_until_complete(asyncio.wait_for(out, 10)) if inspect.isawaitable(out) else out
        return call


class Ctx:
    """State carried between the capability checks of one run."""

    def __init__(self, server, cls, loop=None):
        self.server, self.cls, self.loop, self.ids = server, cls, loop, {}
        self.ex = self.new(cfg(server))

    def new(self, config):
        ex = self.cls(config)
        return ex if self.loop is None else Blocking(ex, self.loop)


def _order(o: dict, status: str = "open") -> dict:
    assert o["id"] and o["status"] == status and o["symbol"] == BTC, o
    return o


def _moved_index(c) -> bool:
    """The admin moves BTC's index to 60,100 (a mark and an index candle)."""
    with Client(c.server.orders, 0, ADMIN_KEY) as admin:
        admin.set_index_price("BTC", "60100")
    return True


def _settled_funding(c) -> bool:
    with Client(c.server.orders, 0, ADMIN_KEY) as admin:
        admin.call(m.SettleFunding(symbol="BTC-PERP"))
    return True


def _all_canceled(lst: list) -> bool:
    return bool(lst) and all(o["status"] == "canceled" for o in lst)


#: one check per capability ``has`` claims, run in this order against a real
#: server. A key flipped to True needs a line here (the test says so).
CHECKS: list[tuple[str, object]] = [
    ("publicAPI", lambda c: c.new({"urls": {"api": {"orders": c.server.orders}}}).fetch_order_book(BTC)),
    ("sandbox", lambda c: c.ex.set_sandbox_mode(True) or c.ex.fetch_markets()),
    ("swap", lambda c: all(mk["swap"] and mk["type"] == "swap" for mk in c.ex.fetch_markets())),
    ("fetchMarkets", lambda c: len(c.ex.fetch_markets()) == 5),
    ("fetchCurrencies", lambda c: "USDT" in c.ex.fetch_currencies()),
    ("fetchTime", lambda c: c.ex.fetch_time() > 1_700_000_000_000),
    ("fetchStatus", lambda c: c.ex.fetch_status()["status"] == "ok"),
    ("fetchTicker", lambda c: c.ex.fetch_ticker(BTC)["bid"] == 59990.0),
    ("fetchTickers", lambda c: c.ex.fetch_tickers([BTC])[BTC]["ask"] == 60010.0),
    ("fetchOrderBook", lambda c: c.ex.fetch_order_book(BTC)["bids"][0] == [59990.0, 5.0]),
    ("fetchL2OrderBook", lambda c: c.ex.fetch_l2_order_book(BTC, 1)["asks"] == [[60010.0, 5.0]]),
    ("privateAPI", lambda c: c.ex.fetch_balance()["USDT"]["total"] == 1_000_000.0),
    ("fetchBalance", lambda c: c.ex.fetch_balance()["free"]["USDT"] == 1_000_000.0),
    ("setLeverage", lambda c: c.ex.set_leverage(10, BTC)["leverage"] == 10),
    ("fetchLeverage", lambda c: c.ex.fetch_leverage(BTC)["longLeverage"] == 10),
    ("fetchLeverages", lambda c: c.ex.fetch_leverages([BTC])[BTC]["shortLeverage"] == 10),
    ("fetchLeverageTiers", lambda c: c.ex.fetch_leverage_tiers([BTC])[BTC][0]["minNotional"] == 0),
    ("fetchMarketLeverageTiers", lambda c: c.ex.fetch_market_leverage_tiers(BTC)[0]["maxLeverage"] > 10),
    ("fetchMarginMode", lambda c: c.ex.fetch_margin_mode(BTC)["marginMode"] == "cross"),
    ("setMarginMode", lambda c: c.ex.set_margin_mode("isolated", BTC)["marginMode"] == "isolated"),
    ("createMarketBuyOrder", lambda c: _order(c.ex.create_market_buy_order(BTC, 0.1), "closed")),
    ("addMargin", lambda c: c.ex.add_margin(BTC, 100)["type"] == "add"),
    ("reduceMargin", lambda c: c.ex.reduce_margin(BTC, 50)["type"] == "reduce"),
    ("createMarketSellOrder", lambda c: _order(c.ex.create_market_sell_order(BTC, 0.1, {"reduceOnly": True}),
                                               "closed")),
    ("createLimitOrder", lambda c: _order(c.ex.create_limit_order(BTC, "buy", 0.01, 59_000))),
    ("createLimitBuyOrder", lambda c: _order(c.ex.create_limit_buy_order(BTC, 0.01, 59_001))),
    ("createLimitSellOrder", lambda c: _order(c.ex.create_limit_sell_order(BTC, 0.01, 61_000))),
    ("createPostOnlyOrder", lambda c: _order(c.ex.create_post_only_order(BTC, "limit", "buy", 0.01, 59_002))),
    ("createOrder", lambda c: c.ids.setdefault("o", _order(c.ex.create_order(BTC, "limit", "buy", 0.02, 59_003))["id"])),
    ("fetchOpenOrders", lambda c: len(c.ex.fetch_open_orders(BTC)) == 5),
    ("fetchOrder", lambda c: c.ex.fetch_order(c.ids["o"], BTC)["amount"] == 0.02),
    ("editOrder", lambda c: c.ex.edit_order(c.ids["o"], BTC, "limit", "buy", 0.03, 59_004)["price"] == 59_004.0),
    ("cancelOrder", lambda c: c.ex.cancel_order(c.ids["o"], BTC)["status"] == "canceled"),
    ("createOrders", lambda c: [o["status"] for o in c.ex.create_orders(
        [{"symbol": BTC, "type": "limit", "side": "buy", "amount": 0.01, "price": 58_000},
         {"symbol": BTC, "type": "limit", "side": "sell", "amount": 0.01, "price": 62_000}])] == ["open", "open"]),
    ("createStopOrder", lambda c: _order(c.ex.create_stop_order(BTC, "market", "buy", 0.01, None, 65_500))),
    ("createStopLimitOrder", lambda c: _order(c.ex.create_stop_limit_order(BTC, "buy", 0.01, 65_100, 65_000))),
    ("createStopMarketOrder", lambda c: _order(c.ex.create_stop_market_order(BTC, "buy", 0.01, 65_000))),
    ("createTriggerOrder", lambda c: _order(c.ex.create_trigger_order(BTC, "market", "buy", 0.01, None, 66_000))),
    ("cancelAllOrders", lambda c: _all_canceled(c.ex.cancel_all_orders(BTC))),
    ("fetchCanceledOrders", lambda c: len(c.ex.fetch_canceled_orders(BTC)) == 11),
    ("createMarketOrder", lambda c: _order(c.ex.create_market_order(BTC, "buy", 0.05), "closed")),
    ("fetchPositions", lambda c: c.ex.fetch_positions([BTC])[0]["contracts"] == 0.05),
    ("fetchPosition", lambda c: c.ex.fetch_position(BTC)["side"] == "long"),
    ("createReduceOnlyOrder", lambda c: _order(c.ex.create_reduce_only_order(BTC, "market", "sell", 0.05),
                                               "closed")),
    ("fetchMyTrades", lambda c: [t["side"] for t in c.ex.fetch_my_trades(BTC)] == ["buy", "sell", "buy", "sell"]),
    ("fetchClosedOrders", lambda c: len(c.ex.fetch_closed_orders(BTC)) == 15),
    ("fetchOrders", lambda c: len(c.ex.fetch_orders(BTC)) == 15),
    ("fetchTrades", lambda c: wait_for(lambda: len(c.ex.fetch_trades(BTC)) == 4, 5, "the public trades")),
    # --- history: candles of the four trades (0.05 + 0.05 + 0.02 ... lots), mark/index after an index move, funding
    ("fetchOHLCV", lambda c: sum(r[5] for r in c.ex.fetch_ohlcv(BTC, "1d")) > 0),
    ("fetchMarkOHLCV", lambda c: _moved_index(c) and c.ex.fetch_mark_ohlcv(BTC, "1m")[-1][4] == 60_100.0),
    ("fetchIndexOHLCV", lambda c: c.ex.fetch_index_ohlcv(BTC, "1m")[-1][4] == 60_100.0),
    ("fetchFundingRate", lambda c: c.ex.fetch_funding_rate(BTC)["markPrice"] == 60_100.0),
    ("fetchFundingRates", lambda c: c.ex.fetch_funding_rates([BTC])[BTC]["interval"] == "8h"),
    ("fetchFundingRateHistory", lambda c: _settled_funding(c) and len(c.ex.fetch_funding_rate_history(BTC)) == 1),
    # --- protective orders: an entry with its take-profit and stop-loss, then one of each kind on the position
    ("createOrderWithTakeProfitAndStopLoss", lambda c: _order(c.ex.create_order_with_take_profit_and_stop_loss(
        BTC, "market", "buy", 0.02, None, 70_000, 50_000), "closed")),
    ("createStopLossOrder", lambda c: _order(c.ex.create_stop_loss_order(BTC, "market", "sell", 0.02, None, 51_000))),
    ("createTakeProfitOrder", lambda c: _order(c.ex.create_take_profit_order(BTC, "market", "sell", 0.02, None,
                                                                             69_000))),
    ("createTrailingPercentOrder", lambda c: _order(c.ex.create_trailing_percent_order(BTC, "market", "sell", 0.02,
                                                                                       None, 1.0))),
    ("closePosition", lambda c: _order(c.ex.close_position(BTC), "closed")),
]

#: the asyncio class's own capabilities, and the tests that call them
ASYNC_CHECKS = {"ws": "test_pro_watch_methods", "watchTrades": "test_pro_watch_methods",
                "watchTicker": "test_pro_watch_methods", "watchBalance": "test_pro_watch_methods",
                "watchMyTrades": "test_pro_watch_methods", "watchOHLCV": "test_pro_watch_methods",
                "watchOrderBook": "test_ccxt.py::test_async_watch_order_book",
                "watchOrders": "test_ccxt.py::test_async_watch_orders_and_positions",
                "watchPositions": "test_ccxt.py::test_async_watch_orders_and_positions"}

#: keys that are not capabilities to call: None is ccxt's "unknown"
NOT_CALLABLE = {"CORS"}


@pytest.mark.deadline(60)
@pytest.mark.parametrize("cls", [ccxt.exchangesim, accxt.exchangesim], ids=["blocking", "async"])
def test_every_capability_has_claims_works(server, ctx, cls):
    """``has`` is true: every key that is True or "emulated" works against
    the venue, in the order above; every key without a check is False. The
    asyncio class runs the same checks, awaited."""
    claimed = {k for k, v in cls.has.items() if v} - NOT_CALLABLE
    checked = {k for k, _ in CHECKS} | (set(ASYNC_CHECKS) if cls is accxt.exchangesim else set())
    assert claimed == checked, f"claimed without a check: {claimed - checked}; " \
                               f"checked but not claimed: {checked - claimed}"
    maker = quote(server, ctx)
    loop = asyncio.new_event_loop() if cls is accxt.exchangesim else None
    c = Ctx(server, cls, loop)
    try:
        for key, check in CHECKS:
            try:
                result = check(c)
            except Exception as exc:
                raise AssertionError(f"has[{key!r}] is claimed but raised {exc!r}") from exc
            assert result, f"has[{key!r}] is claimed but its check failed"
            if key == "fetchL2OrderBook":  # the maker's book again, for the rest
                maker.cancel_all("BTC-PERP")
                maker.buy("BTC-PERP", "5", "59990.0")
                maker.sell("BTC-PERP", "5", "60010.0")
    finally:
        c.ex.close()
        maker.close()
        if loop is not None:
            loop.close()


# ------------------------------------------------------------- params rule


_ARGS = {"symbol": BTC, "symbols": [BTC], "type": "limit", "side": "buy", "amount": 0.01, "price": 59_000,
         "id": "1", "marginMode": "cross", "triggerPrice": 55_000, "timeframe": "1m",
         "orders": [{"symbol": BTC, "type": "limit", "side": "buy", "amount": 0.01, "price": 59_000}],
         "leverage": 5, "hedged": False, "code": "USDT", "kind": "add",
         # --- protective orders
         "stopLossPrice": 50_000, "takeProfitPrice": 70_000, "takeProfit": 70_000, "stopLoss": 50_000,
         "trailingPercent": 1.0, "trailingTriggerPrice": 61_000}
#: optional arguments the walk passes anyway (without them the method refuses before reading params)
_OPTIONAL_ARGS = ("price", "triggerPrice", "stopLossPrice", "takeProfitPrice", "trailingPercent")


def _public_methods_with_params(cls):
    for name, fn in inspect.getmembers(cls, callable):
        if name.startswith("_") or "params" not in inspect.signature(fn).parameters:
            continue
        yield name, fn


@pytest.mark.parametrize("cls", [ccxt.exchangesim, accxt.exchangesim], ids=["blocking", "async"])
def test_every_method_with_params_refuses_an_unknown_key(cls):
    """The rule, walked over every public method that takes ``params``: an
    unknown key is BadRequest naming it (before any I/O: no server here),
    unless the whole method is NotSupported (its ``has`` key is False)."""
    ex = cls({"apiKey": "2:k", "urls": {"api": {"orders": "tcp://127.0.0.1:1", "marketData": "tcp://127.0.0.1:1"}}})
    ex._set_markets(Venue().apply(m.QueryInstruments())[0])
    names = []
    for name, fn in _public_methods_with_params(cls):
        sig = inspect.signature(fn)
        kwargs = {p.name: _ARGS[p.name] for p in list(sig.parameters.values())[1:]
                  if p.name != "params" and (p.default is inspect.Parameter.empty or p.name in _OPTIONAL_ARGS)}
        has_key = _base._camel(name)
        try:
            out = getattr(ex, name)(**kwargs, params={"noSuchParam": 1})
            if inspect.isawaitable(out):
                asyncio.run(asyncio.wait_for(out, 5))
        except ccxt.BadRequest as exc:
            assert "params['noSuchParam']" in str(exc), (name, exc)
        except ccxt.NotSupported:
            assert not cls.has.get(has_key), f"{name} raises NotSupported but has[{has_key!r}] is claimed"
        else:
            raise AssertionError(f"{name}() accepted an unknown param")
        names.append(name)
    assert {"create_order", "fetch_balance", "watch_trades", "create_orders"} & set(names)
    assert len(names) >= (30 if cls is ccxt.exchangesim else 38), names
    assert _base.ExchangeBase._g_create_order.params_read[:3] == ("timeInForce", "postOnly", "reduceOnly")


def test_refusal_reasons_name_the_key_and_what_is_read():
    ex = ccxt.exchangesim({"apiKey": "2:k"})
    ex._set_markets(Venue().apply(m.QueryInstruments())[0])
    with pytest.raises(ccxt.NotSupported, match=r"createOrder\(\) params\['triggerDirection'\] is not supported"):
        ex.create_order(BTC, "limit", "buy", 0.01, 59_000, {"triggerDirection": "above"})
    with pytest.raises(ccxt.InvalidOrder, match=r"workingType / triggerType apply to trigger orders"):
        ex.create_order(BTC, "limit", "buy", 0.01, 59_000, {"triggerType": "last"})
    with pytest.raises(ccxt.BadRequest, match=r"fetchStatus\(\) unknown params\['x'\].*reads no params"):
        ex.fetch_status({"x": 1})
    with pytest.raises(ccxt.BadRequest, match=r"orders\[1\] unknown key\(s\) \['qty'\]"):
        ex.create_orders([{"symbol": BTC, "type": "limit", "side": "buy", "amount": 0.01, "price": 1},
                          {"symbol": BTC, "type": "limit", "side": "buy", "qty": 0.01}])
    with pytest.raises(ccxt.BadRequest, match=r"createOrder\(\) unknown params\['reduce_only'\]"):
        ex.create_orders([{"symbol": BTC, "type": "market", "side": "sell", "amount": 0.01,
                           "params": {"reduce_only": True}}])


# ---------------------------------------------------------- base helpers


def test_base_helpers_match_ccxt():
    """The same inputs through the facade and through ccxt's Exchange."""
    ex, real = ccxt.exchangesim({}), real_ccxt.Exchange()
    d = {"a": "1.5", "b": 2, "c": None, "d": "", "e": "x", "f": 3.25, "g": "100.0", "l": [1, 2], "z": 0}
    keys = ["a", "b", "c", "d", "e", "f", "g", "l", "z", "missing"]
    for name in ("safe_string", "safe_integer", "safe_float", "safe_value", "safe_number"):
        for k in keys:
            assert getattr(ex, name)(d, k) == getattr(real, name)(d, k), (name, k)
            assert getattr(ex, name)(d, k, "dflt") == getattr(real, name)(d, k, "dflt"), (name, k)
        for k1 in keys:
            for k2 in ("a", "b", "e", "missing"):
                assert getattr(ex, name + "_2")(d, k1, k2) == getattr(real, name + "_2")(d, k1, k2), (name, k1, k2)
            try:
                want = getattr(real, name + "_n")(d, [k1, "b"])
            except TypeError:  # ccxt's safe_float_n lets float([1, 2]) raise; the facade returns the default
                want = None
            assert getattr(ex, name + "_n")(d, [k1, "b"]) == want, (name, k1)
        assert getattr(ex, name)(None, "a") == getattr(real, name)(None, "a")
        assert getattr(ex, name)([5, "6"], 1) == getattr(real, name)([5, "6"], 1)
    assert ex.safeString2 == ex.safe_string_2 and ex.safeIntegerN == ex.safe_integer_n  # camelCase too
    for tf in ("1s", "1m", "15m", "1h", "4h", "1d", "1w", "1M", "1y"):
        assert ex.parse_timeframe(tf) == real.parse_timeframe(tf)
    with pytest.raises(ccxt.NotSupported):
        ex.parse_timeframe("1x")
    for ts in (0, 1_700_000_000_123, 1_700_000_000_123.9, "1700000000000", "12a", -1, None, True):
        assert ex.iso8601(ts) == real.iso8601(ts), ts
    for s in ("2024-01-02T03:04:05.678Z", "2024-01-02T03:04:05Z", "2024-01-02 03:04:05", "2024-01-02T03:04:05+02:00",
              "2024-01-02T03:04:05.1234567Z", "garbage", None):
        assert ex.parse8601(s) == real.parse8601(s), s
    before_ms, ms, after_ms = real.milliseconds(), ex.milliseconds(), real.milliseconds()  # the same clock, same unit
    assert before_ms <= ms <= after_ms
    before_us, us, after_us = real.microseconds(), ex.microseconds(), real.microseconds()
    assert before_us <= us <= after_us
    before_s, secs, after_s = real.seconds(), ex.seconds(), real.seconds()
    assert before_s <= secs <= after_s
    assert ex.sum(1, None, 2.5, "x") == real.sum(1, None, 2.5, "x") == 3.5
    assert ex.omit(d, "a", ["b", "c"]) == real.omit(d, "a", ["b", "c"])
    assert ex.extend({"a": 1}, {"b": 2}, {"a": 3}) == real.extend({"a": 1}, {"b": 2}, {"a": 3})
    nested = ({"x": {"y": 1, "z": {"w": 2}}}, {"x": {"z": {"v": 3}}, "k": 1}, {"x": {"y": 9}})
    assert ex.deep_extend(*nested) == real.deep_extend(*nested)
    assert ex.deep_extend({"a": 1}, None) == real.deep_extend({"a": 1}, None)
    rows = [{"id": "b", "side": "buy", "p": 2}, {"id": "a", "side": "sell", "p": None}, {"id": "c", "side": "buy", "p": 1}]
    assert ex.index_by(rows, "id") == real.index_by(rows, "id")
    assert ex.index_by({"k2": rows[0], "k1": rows[1]}, "id") == real.index_by({"k2": rows[0], "k1": rows[1]}, "id")
    assert ex.index_by([[1, "x"], [2, "y"]], 0) == real.index_by([[1, "x"], [2, "y"]], 0)
    assert dict(ex.group_by(rows, "side")) == dict(real.group_by(rows, "side"))
    for desc in (False, True):
        assert ex.sort_by(rows, "p", desc) == real.sort_by(rows, "p", desc)
        assert ex.sort_by(rows, "id", desc) == real.sort_by(rows, "id", desc)
    assert ex.filter_by(rows, "side", "buy") == real.filter_by(rows, "side", "buy")
    assert ex.aggregate([[1.0, 2.0], [1.0, 3.0], [2.0, 0]]) == real.aggregate([[1.0, 2.0], [1.0, 3.0], [2.0, 0]])


def test_precision_matches_ccxts_tick_size_mode():
    """amount_to_precision / price_to_precision give what ccxt gives for the
    same market (TICK_SIZE precision: amounts truncate, prices round)."""
    ex = ccxt.exchangesim({})
    ex._set_markets(Venue().apply(m.QueryInstruments())[0])
    real = real_ccxt.Exchange({"precisionMode": real_ccxt.TICK_SIZE})
    real.markets = {BTC: ex.market(BTC)}
    real.markets_by_id = {"BTC-PERP": [ex.market(BTC)]}
    real.symbols = [BTC]
    for amount in (0.0129, 1.0, 0.001, 12.3456789, 999.9999):
        assert ex.amount_to_precision(BTC, amount) == real.amount_to_precision(BTC, amount), amount
    for price in (60000.05, 60000.04, 59999.95, 0.1, 123456.789):
        assert ex.price_to_precision(BTC, price) == real.price_to_precision(BTC, price), price


# ------------------------------------------------------ batch, L2, status


def test_create_orders_batch_and_l2_book_and_reload(server, ctx):
    """create_orders pipelines the orders and answers one structure each; a
    refused one is ``rejected`` with the reason while the others stand.
    load_markets(True) asks the venue again; fetch_l2_order_book is the book."""
    maker = quote(server, ctx)
    ex = ccxt.exchangesim(cfg(server))
    try:
        markets = ex.load_markets()
        assert ex.load_markets() is markets and ex.load_markets(True) is not markets
        assert ex.markets_by_id["BTC-PERP"][0] is ex.market(BTC)
        out = ex.create_orders([
            {"symbol": BTC, "type": "limit", "side": "buy", "amount": 0.01, "price": 59_000,
             "params": {"clientOrderId": "b-1"}},
            {"symbol": BTC, "type": "limit", "side": "buy", "amount": 0.01, "price": 60_100,
             "params": {"postOnly": True}},  # would cross the 60,010 ask
            {"symbol": "ETH/USDT:USDT", "type": "limit", "side": "sell", "amount": 0.1, "price": 3_100},
        ])
        assert [o["status"] for o in out] == ["open", "rejected", "open"]
        assert out[0]["clientOrderId"] == "b-1" and out[1]["id"] is None
        assert out[1]["info"]["reason"] == "post_only_would_cross" and out[1]["info"]["error"] == "OrderImmediatelyFillable"
        assert sorted(o["id"] for o in ex.fetch_open_orders()) == sorted([out[0]["id"], out[2]["id"]])
        l2 = ex.fetch_l2_order_book(BTC)
        assert l2["bids"] == [[59990.0, 5.0], [59000.0, 0.01]] and l2["asks"] == [[60010.0, 5.0]]
        assert l2["nonce"] == ex.fetch_order_book(BTC)["nonce"]
        status = ex.fetch_status()
        assert status["status"] == "ok" and status["info"]["instruments"] == 5
        bal = ex.fetch_balance()  # every currency has a row (ccxt bots index balance[base])
        assert bal["BTC"] == {"free": 0.0, "used": 0.0, "total": 0.0} and bal["total"]["ETH"] == 0.0
    finally:
        ex.close()
        maker.close()
    dead = ccxt.exchangesim({"timeout": 300, "urls": {"api": {"orders": "tcp://127.0.0.1:9"}}})
    with pytest.raises(ccxt.NetworkError):  # a venue that does not answer: not "ok"
        dead.fetch_status()
    dead.close()


# ------------------------------------------------------------ ccxt.pro


@pytest.mark.deadline(40)
def test_pro_watch_methods(server, ctx):
    """watch_trades / watch_my_trades return what happened since the previous
    call; watch_ticker the ticker after a trade or mark message;
    watch_balance the balance after an account update; watch_ohlcv candles
    built from the trade stream."""
    maker = quote(server, ctx)

    async def main():
        ex = accxt.exchangesim(cfg(server))
        other = accxt.exchangesim(cfg(server, 3))
        try:
            await ex.load_markets()
            first_ticker = await asyncio.wait_for(ex.watch_ticker(BTC), 5)  # first call: now
            assert (first_ticker["bid"], first_ticker["ask"]) == (59990.0, 60010.0)
            first_balance = await asyncio.wait_for(ex.watch_balance(), 5)
            assert first_balance["USDT"]["total"] == 1_000_000.0
            trades = asyncio.ensure_future(ex.watch_trades(BTC))
            mine = asyncio.ensure_future(ex.watch_my_trades(BTC))
            ticker = asyncio.ensure_future(ex.watch_ticker(BTC))
            balance = asyncio.ensure_future(ex.watch_balance())
            candles = asyncio.ensure_future(ex.watch_ohlcv(BTC, "1m"))
            await asyncio.sleep(0.2)  # the feed is subscribed; nothing has happened yet
            assert not any(f.done() for f in (trades, mine, ticker, balance, candles))
            await other.create_order(BTC, "market", "buy", 0.2)  # someone else's trade: public only
            got = await asyncio.wait_for(trades, 5)
            assert [(t["symbol"], t["side"], t["price"], t["amount"]) for t in got] == [(BTC, "buy", 60010.0, 0.2)]
            assert not mine.done()
            tick = await asyncio.wait_for(ticker, 5)
            assert tick["last"] == 60010.0 and tick["info"]["lastSource"] == "trade"
            (bar,) = await asyncio.wait_for(candles, 5)
            assert bar[0] % 60_000 == 0 and bar[1:] == [60010.0, 60010.0, 60010.0, 60010.0, 0.2]
            assert not balance.done()  # not this account's update
            await ex.create_order(BTC, "market", "sell", 0.3)
            (fill,) = await asyncio.wait_for(mine, 5)
            assert (fill["side"], fill["price"], fill["amount"], fill["takerOrMaker"]) == ("sell", 59990.0, 0.3, "taker")
            bal = await asyncio.wait_for(balance, 5)
            assert bal["USDT"]["used"] > 0  # the short's margin
            (bar2,) = await asyncio.wait_for(ex.watch_ohlcv(BTC, "1m"), 5)  # the same minute, most likely
            if bar2[0] == bar[0]:
                assert bar2[1:] == [60010.0, 60010.0, 59990.0, 59990.0, 0.5]
            else:
                assert bar2[1:] == [59990.0, 59990.0, 59990.0, 59990.0, 0.3]
            assert [t["price"] for t in await asyncio.wait_for(ex.watch_trades(BTC), 5)] == [59990.0]
            with pytest.raises(accxt.BadRequest, match="timeframe"):
                await ex.watch_ohlcv(BTC, "m")
            with pytest.raises(accxt.NotSupported, match="timeframe unit x"):
                await ex.watch_ohlcv(BTC, "1x")
        finally:
            await ex.close()
            await other.close()

    asyncio.run(main())
    maker.close()


def test_ohlcv_candles_from_trades():
    from clients.ccxt._streams import Candles

    c = Candles("1m")
    for ts, price, amount in ((60_000, 10.0, 1.0), (61_000, 12.0, 0.5), (119_999, 9.0, 2.0), (120_000, 11.0, 1.0)):
        c.add(ts, price, amount)
    assert c.take() == [[60_000, 10.0, 12.0, 9.0, 9.0, 3.5], [120_000, 11.0, 11.0, 11.0, 11.0, 1.0]]
    assert c.take() == []
    c.add(59_000, 1.0, 1.0)  # older than the newest candle: ignored
    c.add(121_000, 13.0, 1.0)
    assert c.take() == [[120_000, 11.0, 13.0, 11.0, 13.0, 2.0]]
    assert Candles("1h").ms == 3_600_000


# ------------------------------------------------- ccxt's examples, ported


def test_example_create_cancel(server, ctx, capsys):
    maker = quote(server, ctx)
    order = asyncio.run(asyncio.wait_for(create_cancel.main(cfg(server), BTC), 20))
    maker.close()
    out = capsys.readouterr().out
    assert "Failed" not in out, out
    assert order["status"] == "open" and order["price"] == 70000.0 and order["amount"] == 0.001
    assert "'status': 'canceled'" in out


def run_beside(example, server, account: int, orders: list[tuple], pause: float):
    """Run a ported example (its coroutine) while ``account`` places
    ``orders`` (create_order arguments after the symbol), one every ``pause``
    seconds; the example's result."""
    async def place():
        ex = accxt.exchangesim(cfg(server, account))
        try:
            await ex.load_markets()
            for args in orders:
                await asyncio.sleep(pause)
                await ex.create_order(BTC, *args)
        finally:
            await ex.close()

    async def main():
        out, _ = await asyncio.wait_for(asyncio.gather(example, place()), 20)
        return out

    return asyncio.run(main())


@pytest.mark.deadline(40)
def test_example_watch_trades(server, ctx, capsys):
    maker = quote(server, ctx)
    seen = run_beside(watch_trades.main(cfg(server), BTC, 3), server, 3,
                      [("market", "buy", 0.01), ("market", "sell", 0.02), ("market", "buy", 0.03)], 0.3)
    maker.close()
    assert [(t["side"], t["amount"]) for t in seen] == [("buy", 0.01), ("sell", 0.02), ("buy", 0.03)]
    lines = [ln for ln in capsys.readouterr().out.splitlines() if BTC in ln]
    assert len(lines) == 3 and all("trades in cache" in ln for ln in lines)


@pytest.mark.deadline(40)
def test_example_reload_markets(server, ctx, capsys):
    maker = quote(server, ctx)
    log = run_beside(reload_markets.main(cfg(server), BTC, 50, 3), server, 1,
                     [("limit", "buy", 0.01, 59_000 - i) for i in range(4)], 0.1)
    maker.close()
    assert [e for e in log if e[0] == "reloaded"] == [("reloaded", 5)] * 3
    nonces = [e[1] for e in log if e[0] == "book"]
    assert len(nonces) == 3 and nonces == sorted(set(nonces))
    assert "error" not in {e[0] for e in log}
