"""Margin calls and liquidations as a person reads them: one line per event.

The venue reports a liquidation as a run of events (``LiquidationStarted``,
the liquidated account's fills, ``InsuranceTakeover`` / ``AutoDeleverage``
for what the book could not absorb, one ``LiquidationSlice`` per slice,
``CollateralConversion``, ``BankruptcyCovered``, ``LiquidationFinished``).
:class:`Narrator` turns them into lines in human units: quantities in the
underlying, prices in the settlement currency, margin ratios in the one
format of :func:`protocol.units.ratio_text`, each slice with the ratio
before and after it. ``exchange-sim demo`` prints them as they happen.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from protocol import messages as m
from protocol.units import ratio_text

#: every event a liquidation is told by (and the page's cascade is drawn from)
LIQUIDATION_EVENTS = (m.MarginCall, m.LiquidationStarted, m.LiquidationSlice, m.InsuranceTakeover,
                      m.AutoDeleverage, m.CollateralConversion, m.BankruptcyCovered, m.LiquidationFinished,
                      m.CascadeBoundHit)


def usd(x: float | Decimal) -> str:
    """Dollars, the minus sign before the dollar sign."""
    return f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"


def ratio_phrase(ratio: float | None) -> str:
    """"ratio 80.3%", or "no positions left" once there is no requirement."""
    return "no positions left" if ratio is None else f"ratio {ratio_text(ratio)}"


class Narrator:
    """Lines for the margin and liquidation events of a stream, in order.

    Keeps what it needs across calls (each account's last ratio, the fills
    of a slice not yet reported), so a liquidation split over several
    replies still reads as one story."""

    def __init__(self, info: m.Instruments, settlement: str = "USDT"):
        self.ins = {i.symbol: i for i in info.instruments}
        self.decimals = {a.name: a.decimals for a in info.assets}
        self.settlement = settlement
        self._ratio: dict[int, float | None] = {}
        self._fills: dict[tuple[int, str], list[tuple[int, int]]] = {}  # (account, symbol) -> [(price, qty)]
        self._after_slice: list[str] = []  # takeover / ADL lines, told under the slice they belong to
        self._slice_no: dict[int, int] = {}

    # ------------------------------------------------------------- units

    def qty(self, symbol: str, lots: int) -> str:
        return f"{Decimal(lots) * Decimal(self.ins[symbol].lot_size):,f} {symbol}"

    def price(self, symbol: str, ticks: int | Decimal) -> str:
        tick = Decimal(self.ins[symbol].tick_size)
        return f"{(Decimal(ticks) * tick).quantize(tick):,f} {self.settlement}"

    def money(self, minor: int) -> str:
        return usd(Decimal(minor).scaleb(-self.decimals[self.settlement]))

    # ------------------------------------------------------------- events

    def lines(self, events: Iterable) -> list[str]:
        out: list[str] = []
        for e in events:
            t = type(e)
            if t is m.Fill:
                if e.liquidation:
                    self._fills.setdefault((e.account, e.symbol), []).append((e.price, e.qty))
            elif t is m.MarginCall:
                where = f" ({e.symbol}, isolated)" if e.symbol else ""
                out.append(f"  margin call ({e.level}) for account {e.account}{where}: ratio "
                           f"{ratio_text(e.margin_ratio)} (equity {usd(e.equity)}, MM {usd(e.mm)})")
            elif t is m.LiquidationStarted:
                self._ratio[e.account] = e.margin_ratio
                self._slice_no[e.account] = 0
                where = f" ({e.symbol}, isolated)" if e.symbol else ""
                out.append(f"  liquidation of account {e.account}{where} starts: ratio {ratio_text(e.margin_ratio)} "
                           f"(equity {usd(e.equity)} < MM {usd(e.mm)})")
            elif t is m.InsuranceTakeover:
                self._after_slice.append(
                    f"        the insurance fund (account {e.fund}) takes over {self.qty(e.symbol, e.qty)} at "
                    f"{self.price(e.symbol, e.price)}, the bankruptcy price")
            elif t is m.AutoDeleverage:
                self._after_slice.append(
                    f"        auto-deleverage: account {e.counterparty}'s opposite position closed against it, "
                    f"{self.qty(e.symbol, e.qty)} at {self.price(e.symbol, e.price)} (rank {e.rank:.2f})")
            elif t is m.LiquidationSlice:
                out.append(self._slice(e))
                out.extend(self._after_slice)
                self._after_slice.clear()
            elif t is m.CollateralConversion:
                amount = Decimal(e.amount).scaleb(-self.decimals[e.asset])
                out.append(f"        account {e.account} sells {amount:,.2f} {e.asset} to the insurance fund at "
                           f"${e.price:,.4g} for {self.money(e.proceeds)}, repaying its {self.settlement} debt")
            elif t is m.BankruptcyCovered:
                out.append(f"        the insurance fund pays the {self.money(e.amount)} deficit account {e.account} "
                           "leaves behind")
            elif t is m.LiquidationFinished:
                out.extend(self._after_slice)
                self._after_slice.clear()
                self._fills.clear()  # liquidations run one after another: what is left was not this one's
                where = f" ({e.symbol}, isolated)" if e.symbol else ""
                out.append(f"  liquidation of account {e.account}{where} finished: {ratio_phrase(e.margin_ratio)} "
                           f"(equity {usd(e.equity)}, MM {usd(e.mm)})")
            elif t is m.CascadeBoundHit:
                out.append(f"  the cascade stopped after {e.rounds} rounds; accounts "
                           f"{', '.join(map(str, e.pending))} are liquidated on the next command")
        out.extend(self._after_slice)
        self._after_slice.clear()
        return out

    def _slice(self, e: m.LiquidationSlice) -> str:
        n = self._slice_no[e.account] = self._slice_no.get(e.account, 0) + 1
        before = self._ratio.get(e.account)
        self._ratio[e.account] = e.margin_ratio_after
        fills = self._fills.pop((e.account, e.symbol), [])
        side = "sells" if e.side == m.Side.SELL else "buys"
        bound = f"bound {self.price(e.symbol, e.bankruptcy_price)}"
        some = "all" if e.book_qty == e.qty else self.qty(e.symbol, e.book_qty).split()[0]
        if e.book_qty and fills:
            lots = sum(q for _, q in fills)
            avg = Decimal(sum(p * q for p, q in fills)) / lots
            at = "at" if len({p for p, _ in fills}) == 1 else "at an average"
            book = f"{some} in the book {at} {self.price(e.symbol, avg)} ({bound})"
        elif e.book_qty:
            book = f"{some} in the book ({bound})"
        else:
            book = f"none in the book at the {bound} or better"
        return (f"    {n:>2}. account {e.account} {side} {self.qty(e.symbol, e.qty)} (impact {usd(e.impact)}): {book}; "
                f"fee {self.money(e.fee)}; "
                f"ratio {ratio_text(before)} -> {ratio_text(e.margin_ratio_after)}")
