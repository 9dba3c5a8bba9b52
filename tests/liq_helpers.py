"""Factories for the liquidation tests.

Configs are the embedded default with overrides through
``msgspec.structs.replace``; venues come with a deep-pocketed house account
(:data:`HOUSE`) that is the counterparty when a test opens a position, a
market maker that quotes depth around the index, and funded traders.

Units (ticks, lots, µUSDT per tick×lot, start marks): the one table in
``units.py``, re-exported here (``U``, ``COIN``, the symbols).

Margin tiers, marginal like tax brackets (IM rate, MM rate):
BTC/ETH: ≤$250k 1%/0.5%, ≤$1M 2%/1%; SOL/BNB: ≤$100k 2%/1%, ≤$1M 5%/2.5%;
MEME: ≤$50k 5%/2.5%, above 20%/10%. Haircuts: MEME 30% up to $50k, BTC/ETH
5% up to $1M, USDT 0. Liquidation (default): target ratio 1.05, slices of
25% (at least $1,000), fee 0.1% of closed notional to the insurance fund
(account :data:`FUND`), conversion penalty 2%, 50 rounds per command.
:func:`liq_config` pins these (:data:`PINNED`), with a 0.1 % fee.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from units import BNB, BTC, COIN, ETH, MEME, SOL, U  # noqa: F401  (re-exported)

from exchange_sim import config as config_mod
from exchange_sim.config import Config
from exchange_sim.venue import Venue
from risk_helpers import open_position
from protocol.messages import (
    PRICE_SCALE,
    AccountUpdate,
    Deposit,
    LiquidationSlice,
    NewOrder,
    QueryAccount,
    Rejected,
    SetIndexPrice,
    SetMarginMode,
    ShockPrice,
    Side,
)

HOUSE = 0  # counterparty with (practically) unlimited USDT
HOUSE_USDT = 10**12  # whole USDT
FUND = 1_000_000_000  # the insurance fund's account id (default config)


# ------------------------------------------------------------------ configs

#: the [liquidation] parameters the tests' hand arithmetic assumes, pinned so
#: a change of the shipped defaults does not silently change the numbers
PINNED = dict(target_ratio=1.05, slice_fraction=0.25, min_slice_notional=1_000.0, fee_rate=0.001,
              conversion_penalty=0.02, max_rounds=50, insurance_seed="1000000")


def replace(obj, **kw):
    return msgspec.structs.replace(obj, **kw)


def liq_config(*, fees: bool = False, risk: dict | None = None, prices: dict | None = None,
               instruments: list | None = None, max_open_orders: int = 10_000, **liquidation) -> Config:
    """The default config with trading fees off (unless ``fees``), the
    ``[liquidation]`` parameters given as keywords, ``[risk]`` overrides,
    start-up index prices in USD (``prices={"MEME": "1"}``), extra
    instrument configs appended, and room for a market maker's quotes
    (``max_open_orders``)."""
    cfg = config_mod.default()
    cfg = replace(cfg, venue=replace(cfg.venue, max_open_orders=max_open_orders))
    if not fees:
        cfg = replace(cfg, instruments=[replace(i, maker_fee="0", taker_fee="0") for i in cfg.instruments])
    cfg = replace(cfg, liquidation=replace(cfg.liquidation, **{**PINNED, **liquidation}))
    if risk:
        cfg = replace(cfg, risk=replace(cfg.risk, **risk))
    if prices:
        cfg = replace(cfg, assets=[replace(a, index_price=str(prices[a.name])) if a.name in prices else a
                                   for a in cfg.assets])
    if instruments:
        cfg = replace(cfg, instruments=[*cfg.instruments, *instruments])
    return cfg


def new_venue(cfg: Config | None = None, house: bool = True) -> Venue:
    """A venue (``liq_config()`` by default) with the house account funded."""
    v = Venue(cfg if cfg is not None else liq_config())
    if house:
        v.apply(Deposit(account=HOUSE, asset="USDT", amount=HOUSE_USDT * U))
    return v


# ----------------------------------------------------------------- accounts


def deposit(v: Venue, account: int, **amounts) -> None:
    """Deposit whole units (decimal strings or numbers) per asset."""
    for asset, whole in amounts.items():
        minor = Decimal(str(whole)) * v.assets[asset].unit
        assert minor == minor.to_integral_value(), f"{whole} {asset} is not whole minor units"
        ev = v.apply(Deposit(account=account, asset=asset, amount=int(minor)))
        assert not isinstance(ev[0], Rejected), ev


def set_mode(v: Venue, account: int, mode: str) -> None:
    ev = v.apply(SetMarginMode(account=account, mode=mode))
    assert not isinstance(ev[0], Rejected), ev


def trader(v: Venue, account: int, mode: str | None = None, **amounts) -> int:
    """A funded trader (whole units per asset), optionally in ``mode``."""
    deposit(v, account, **amounts)
    if mode is not None and v.accounts[account].margin_mode != mode:
        set_mode(v, account, mode)
    return account


def open_pos(v: Venue, account: int, symbol: str, lots: int, price: int | None = None,
             counterparty: int = HOUSE) -> list:
    """``account`` trades ``lots`` (signed: + buys) of ``symbol`` at ``price``
    ticks (default: mark) against ``counterparty`` (see
    ``risk_helpers.open_position``). Asserts the whole fill."""
    return open_position(v, account, symbol, lots, price, house=counterparty)


def market_maker(v: Venue, account: int, symbol: str, *, levels: int = 20, step_bps: int = 10,
                 level_usd: float = 50_000.0, first_bps: int | None = None, center: int | None = None) -> None:
    """Quote ``levels`` bids and asks around ``center`` ticks (default: the
    mark): level k (0-based) at center × (1 ± (first + k·step) bps), each
    ``level_usd`` of notional. The account must be funded (:func:`trader`).
    Quoting around a price a shock is about to reach gives the book the
    post-shock depth a real market would have re-quoted to."""
    ins = v.instruments[symbol]
    mark = ins.mark if center is None else center
    first = step_bps if first_bps is None else first_bps
    lot_usd = ins.usd(mark)
    qty = max(1, int(level_usd / lot_usd))
    for k in range(levels):
        off = mark * (first + k * step_bps) // 10_000
        for side, price in ((Side.BUY, mark - off), (Side.SELL, mark + off)):
            if price < 1:
                continue
            ev = v.apply(NewOrder(account=account, symbol=symbol, side=side, qty=qty, price=price, tif="post_only"))
            assert not isinstance(ev[0], Rejected), ev


# ------------------------------------------------------------------ prices


def set_price(v: Venue, asset: str, usd) -> list:
    return v.apply(SetIndexPrice(asset=asset, price=int(Decimal(str(usd)) * PRICE_SCALE)))


def shock(v: Venue, asset: str, bps: int) -> list:
    return v.apply(ShockPrice(asset=asset, change_bps=bps))


# ------------------------------------------------------------------ events


def of(events: list, cls, **match) -> list:
    return [e for e in events if isinstance(e, cls) and all(getattr(e, k) == val for k, val in match.items())]


def one(events: list, cls, **match):
    found = of(events, cls, **match)
    assert len(found) == 1, f"expected one {cls.__name__} {match}, got {found}"
    return found[0]


def slices(events: list, account: int | None = None) -> list[LiquidationSlice]:
    return [e for e in events if isinstance(e, LiquidationSlice) and (account is None or e.account == account)]


def view(v: Venue, account: int) -> AccountUpdate:
    (ev,) = v.apply(QueryAccount(account=account))
    assert isinstance(ev, AccountUpdate), ev
    return ev


def qty_of(v: Venue, account: int, symbol: str) -> int:
    return v.accounts[account].position_qty(symbol)


def ratio(v: Venue, account: int) -> float | None:
    """The account's margin ratio now (None = no requirement)."""
    acct = v.accounts[account]
    return v.margin.ratio(v.margin.fresh(acct))


def under_mm(v: Venue, tol: float = 1e-9) -> list[int]:
    """Non-fund accounts with an open position whose ratio (isolated: any
    position's own ratio) is below ``risk.liquidation_ratio``."""
    out = []
    m = v.margin
    limit = v.risk.liquidation_ratio - tol
    for aid in sorted(v.accounts):
        acct = v.accounts[aid]
        if aid == v.liq.fund_id or not any(p.qty for p in acct.positions.values()):
            continue
        r = m.ratio(m.fresh(acct))
        if r is not None and r < limit:
            out.append(aid)
    return out


def usd_to_minor(usd) -> int:
    minor = Decimal(str(usd)) * U
    assert minor == minor.to_integral_value()
    return int(minor)


def ceil_div(a: int, b: int) -> int:
    return -((-a) // b)




# ------------------------------------------------------------- scenarios


def determinism_scenario() -> list[list]:
    """A small crash with every liquidation path, as the list of each
    command's events (setup included): twelve accounts in the three modes
    with USDT, MEME or BTC collateral, leveraged SOL longs, BTC shorts and
    MEME longs against the house and a thin market maker, a fund of $500
    (so takeovers run it dry and ADL follows), then SOL −30 %, MEME −50 %,
    BTC +20 %."""
    from protocol.messages import Tick  # noqa: PLC0415

    out: list[list] = []
    v = Venue(liq_config(fees=True, insurance_seed="500"))

    def do(cmd):
        out.append(v.apply(cmd))
        return out[-1]

    do(Deposit(account=HOUSE, asset="USDT", amount=HOUSE_USDT * U))
    do(Deposit(account=9, asset="USDT", amount=50_000_000 * U))
    modes = ("cross", "portfolio", "isolated")
    for a in range(1, 13):
        if a % 3 == 0:
            do(Deposit(account=a, asset="BTC", amount=5 * COIN // 100))
        else:
            do(Deposit(account=a, asset="USDT", amount=(1_500 + 250 * a) * U))
        if a % 4 == 1:
            do(Deposit(account=a, asset="MEME", amount=20_000 * COIN))
        mode = modes[a % 3]
        if mode != "cross":
            do(SetMarginMode(account=a, mode=mode))
    for sym in (SOL, BTC, MEME):
        ins = v.instruments[sym]
        mark = ins.mark
        qty = max(1, int(3_000 / ins.usd(mark)))
        for k in range(1, 6):
            off = mark * 20 * k // 10_000
            do(NewOrder(account=9, symbol=sym, side=Side.BUY, qty=qty, price=mark - off, tif="post_only"))
            do(NewOrder(account=9, symbol=sym, side=Side.SELL, qty=qty, price=mark + off, tif="post_only"))
    for a in range(1, 13):
        plan = ((SOL, 3_000 + 200 * a), (BTC, -(40 + 5 * a)), (MEME, 60_000 + 5_000 * a))
        for sym, lots in plan:
            buy = lots > 0
            price = v.instruments[sym].mark
            counterparty = a + 1 if a < 12 and sym == MEME else HOUSE
            do(NewOrder(account=counterparty, symbol=sym, side=Side.SELL if buy else Side.BUY, qty=abs(lots),
                        price=price, tif="post_only"))
            do(NewOrder(account=a, symbol=sym, side=Side.BUY if buy else Side.SELL, qty=abs(lots), price=price,
                        tif="ioc"))
    do(ShockPrice(asset="SOL", change_bps=-3_000))
    do(Tick())
    do(ShockPrice(asset="MEME", change_bps=-5_000))
    do(ShockPrice(asset="BTC", change_bps=2_000))
    do(ShockPrice(asset="MEME", change_bps=5_000))
    v._check()
    return out
