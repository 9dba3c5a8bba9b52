"""The liquidation benchmark's venues (``bench_liquidation.py``), built from
the package only (benchmarks never import the tests).

:func:`bench_config` is the embedded default config with the
``[liquidation]`` parameters pinned to the values the figures in
``RESULTS.md`` were measured with, so a change of the shipped defaults does
not silently change what is timed.
"""

from __future__ import annotations

import random

import msgspec

from exchange_sim import config as config_mod
from exchange_sim.config import Config
from exchange_sim.venue import Venue
from protocol.messages import CancelAll, Deposit, NewOrder, Rejected, SetIndexPrice, SetMarginMode, Side, TimeInForce

#: the [liquidation] parameters of the recorded runs (fund size: a parameter)
PINNED = dict(target_ratio=1.05, slice_fraction=0.25, min_slice_notional=1_000.0, fee_rate=0.001,
              conversion_penalty=0.02, max_rounds=50)
HOUSE = 0  # the counterparty that opens every position
HOUSE_USDT = 10**12  # whole USDT: practically unlimited
SOL, BTC, ETH = "SOL-PERP", "BTC-PERP", "ETH-PERP"


def replace(obj, **kw):
    return msgspec.structs.replace(obj, **kw)


def bench_config(*, fees: bool = False, fund_usd: str = "1000000", max_open_orders: int = 10_000) -> Config:
    """The default config, liquidation pinned (:data:`PINNED`), an insurance
    fund of ``fund_usd``, trading fees off unless ``fees``."""
    cfg = config_mod.default()
    cfg = replace(cfg, venue=replace(cfg.venue, max_open_orders=max_open_orders))
    if not fees:
        cfg = replace(cfg, instruments=[replace(i, maker_fee="0", taker_fee="0") for i in cfg.instruments])
    return replace(cfg, liquidation=replace(cfg.liquidation, **PINNED, insurance_seed=fund_usd))


def crash_venue(n_accounts: int, seed: int = 1, fund_usd: str = "1000000") -> Venue:
    """``n_accounts`` traders with $500-$10,000 of USDT, 10 % in portfolio and
    10 % in isolated mode: 70 % long SOL at 1-4.5x (half of them also long
    BTC at up to 15x), 17 % short SOL at 0.5-3x, the rest in ETH; all opened
    against the house at mark. Then a market maker quotes 100 levels a side,
    10 bps apart, $100k each, around SOL's index *after* a 30 % fall (the
    book a market that re-quoted during the move would have; the limit band
    is widened to 50 % so it can rest there), and 100 levels of $200k, 5 bps
    apart, around BTC and ETH. Deterministic for a seed. A SetIndexPrice to
    the current SOL price at the end syncs the risk arrays, as a feed tick
    before the crash would."""
    cfg = bench_config(fees=True, fund_usd=fund_usd, max_open_orders=100_000)
    cfg = replace(cfg, venue=replace(cfg.venue, limit_price_band="0.5"))
    v = Venue(cfg)
    usdt = v.assets["USDT"].unit
    rnd = random.Random(seed)
    maker = 1
    v.apply(Deposit(account=HOUSE, asset="USDT", amount=HOUSE_USDT * usdt))
    v.apply(Deposit(account=maker, asset="USDT", amount=10**10 * usdt))
    sol, btc, eth = (v.instruments[s] for s in (SOL, BTC, ETH))

    def open_(a: int, ins, lots: int) -> None:
        if not lots:
            return
        buy = lots > 0
        v.apply(NewOrder(account=HOUSE, symbol=ins.symbol, side=Side.SELL if buy else Side.BUY, qty=abs(lots),
                         price=ins.mark, tif=TimeInForce.POST_ONLY))
        ev = v.apply(NewOrder(account=a, symbol=ins.symbol, side=Side.BUY if buy else Side.SELL, qty=abs(lots),
                              price=ins.mark, tif=TimeInForce.IOC))
        if isinstance(ev[0], Rejected):
            v.apply(CancelAll(account=HOUSE))

    for a in range(10, 10 + n_accounts):
        c = rnd.choice([500, 1_000, 2_000, 5_000, 10_000])
        v.apply(Deposit(account=a, asset="USDT", amount=c * usdt))
        r = rnd.random()
        if r < 0.1:
            v.apply(SetMarginMode(account=a, mode="portfolio"))
        elif r < 0.2:
            v.apply(SetMarginMode(account=a, mode="isolated"))
        kind = rnd.random()
        if kind < 0.7:
            open_(a, sol, int(rnd.uniform(1.0, 4.5) * c / sol.usd(sol.mark)))
            if rnd.random() < 0.5:
                open_(a, btc, int(rnd.uniform(0, 15) * c / btc.usd(btc.mark)))
        elif kind < 0.87:
            open_(a, sol, -int(rnd.uniform(0.5, 3) * c / sol.usd(sol.mark)))
        else:
            open_(a, eth, int(rnd.uniform(-5, 5) * c / eth.usd(eth.mark)) or 1)

    def quote(ins, center: int, levels: int, step_bps: int, usd: float) -> None:
        q = max(1, int(usd / ins.usd(center)))
        for k in range(1, levels + 1):
            off = center * step_bps * k // 10_000
            for side, price in ((Side.BUY, center - off), (Side.SELL, center + off)):
                ev = v.apply(NewOrder(account=maker, symbol=ins.symbol, side=side, qty=q, price=price,
                                      tif=TimeInForce.POST_ONLY))
                assert not isinstance(ev[0], Rejected), ev

    quote(sol, sol.mark * 7_000 // 10_000, 100, 10, 100_000)
    quote(btc, btc.mark, 100, 5, 200_000)
    quote(eth, eth.mark, 100, 5, 200_000)
    v.apply(SetIndexPrice(asset="SOL", price=v.assets["SOL"].index))
    return v
