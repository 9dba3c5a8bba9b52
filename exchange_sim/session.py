"""A short, readable in-process session: what ``exchange-sim run`` prints.

A market maker quotes BTC-PERP around the index; a trader whose wallet holds
only BTC and ETH (no USDT) buys through the book: the fills, the book and
the trader's account show cross-collateralization at work.
"""

from __future__ import annotations

from typing import TextIO

from exchange_sim.config import Config
from exchange_sim.venue import Venue
from protocol.units import ratio_text
from protocol.messages import (
    AccountUpdate,
    BookSnapshot,
    Deposit,
    Fill,
    NewOrder,
    QueryAccount,
    QueryBook,
    Rejected,
    Side,
    TimeInForce,
)

MAKER, TRADER = 1, 2


def _human_price(venue: Venue, symbol: str, ticks: int | float) -> str:
    return f"{float(ticks) * float(venue.instruments[symbol].tick_size):,.2f}"


def _human_qty(venue: Venue, symbol: str, lots: int) -> str:
    return f"{lots * venue.instruments[symbol].lot_size}"


def run_session(config: Config, out: TextIO) -> Venue:
    venue = Venue(config)
    sym = "BTC-PERP"
    ins = venue.instruments[sym]
    usdt = venue.settle.unit
    say = lambda text="": print(text, file=out)  # noqa: E731

    say(f"exchange-sim in-process session: {len(venue.instruments)} instruments, mark {sym} "
        f"{_human_price(venue, sym, ins.mark)} USDT")
    venue.apply(Deposit(account=MAKER, asset="USDT", amount=1_000_000 * usdt))
    venue.apply(Deposit(account=TRADER, asset="BTC", amount=1 * venue.assets["BTC"].unit))
    venue.apply(Deposit(account=TRADER, asset="ETH", amount=10 * venue.assets["ETH"].unit))
    say("deposits: maker 1,000,000 USDT; trader 1 BTC + 10 ETH (no USDT at all)")

    mark = ins.mark
    for i in range(1, 4):  # three levels each side, 10 ticks apart
        for side, price in ((Side.BUY, mark - 10 * i), (Side.SELL, mark + 10 * i)):
            venue.apply(NewOrder(account=MAKER, symbol=sym, side=side, qty=500 * i, price=price, tif=TimeInForce.POST_ONLY))
    say("maker quotes three levels a side, post-only")

    events = venue.apply(NewOrder(account=TRADER, symbol=sym, side=Side.BUY, qty=1200, price=mark + 30, client_order_id="trader-1"))
    say("\ntrader buys 1.2 BTC-PERP, limit " + _human_price(venue, sym, mark + 30))
    for ev in events:
        if isinstance(ev, Fill) and ev.account == TRADER:
            say(f"  fill  {_human_qty(venue, sym, ev.qty)} @ {_human_price(venue, sym, ev.price)}  "
                f"fee {ev.fee / usdt:.4f} USDT  ({ev.liquidity})")
        elif isinstance(ev, Rejected):
            say(f"  rejected: {ev.reason}: {ev.message}")

    (snap,) = venue.apply(QueryBook(symbol=sym, depth=5))
    assert isinstance(snap, BookSnapshot)
    say(f"\n{sym} book (seq {snap.seq})")
    for price, lots in reversed(snap.asks):
        say(f"  ask {_human_price(venue, sym, price):>12}  {_human_qty(venue, sym, lots)}")
    for price, lots in snap.bids:
        say(f"  bid {_human_price(venue, sym, price):>12}  {_human_qty(venue, sym, lots)}")

    (acct,) = venue.apply(QueryAccount(account=TRADER))
    assert isinstance(acct, AccountUpdate)
    say(f"\ntrader account {acct.account} ({acct.margin_mode} margin)")
    for asset, bal in acct.balances.items():
        say(f"  {asset:<5} {bal / venue.assets[asset].unit:>16,.8f}")
    for p in acct.positions:
        say(f"  {p.symbol} {_human_qty(venue, p.symbol, p.qty)} @ {_human_price(venue, p.symbol, p.entry_price)}"
            f"  uPnL {p.upnl / usdt:,.2f} USDT")
    ratio = ratio_text(acct.margin_ratio)
    say(f"  collateral after haircuts {acct.collateral:,.2f}  equity {acct.equity:,.2f}  "
        f"IM {acct.im:,.2f}  MM {acct.mm:,.2f}  margin ratio {ratio}")
    say("  (the USDT balance is negative: fees were paid in USDT the trader never had;\n"
        "   its BTC and ETH back that debt and the position - cross-collateralization)")
    venue._check()
    return venue
