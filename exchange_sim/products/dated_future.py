"""The USDT-margined linear dated future: a second contract kind.

Same arithmetic as the linear perpetual (value, uPnL, notional, fees,
isolated margin; :mod:`exchange_sim.products.perpetual`), but **no funding**
and an **expiry**, at which the position is settled in cash and the
instrument stops trading. docs/adr/0012-dated-futures.md records the choices.

Calendar (Binance COIN/USDT-M delivery and Deribit futures both expire on
the last Friday of the month at 08:00 UTC): a *quarterly* family lists the
last Fridays of March, June, September and December, a *monthly* one every
month's. Symbols are Deribit's, ``BTC-26MAR27`` (day without a leading zero:
``BTC-5MAR27``).

Mark = index + basis. Deribit's futures mark is the index plus an implied
premium that follows the book's bid-ask at a limited speed and stays within
10 % of the index (deribit.com/docs/mark-price); Binance's delivery
contracts likewise mark at the index plus a moving average of the basis. Ours:

    premium_k = mid_k − index_k            (when the book has both sides, else 0)
    basis_k   = basis_{k−1} + (premium_k − basis_{k−1}) · α         α = 2 / (N + 1)
    basis_k   = clamp(basis_k, ±bound · index_k)

sampled at each index update, in 1e-8 USD (integers: ``(premium − basis) ·
2 // (N + 1)``, floor), so the mark moves with where the book trades but a
thin or spoofed book moves it at most ``bound`` (5 % by default) away from
the index. The admin ``ShockBasis`` adds to one expiry's basis (then
clamped the same way).

Settlement price = the time-weighted average of the index over the last 30
minutes before expiry, 07:30–08:00 UTC (Deribit: "the time weighted average
of the Deribit index over the last half hour before expiration",
deribit.com/docs/expiration-price; Binance publishes an
``estimatedSettlePrice`` for the last hour before delivery, we follow
Deribit's window):

    TWAP = Σ index_j · (t_{j+1} − t_j) / 1,800 s      over [expiry − 30 min, expiry]

with ``t_j`` the venue times (the sequencer's ``ts``) at which the index
changed; the index in force at the window's start counts from the start.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timezone

from exchange_sim.products.perpetual import LinearPerpetual

NS = 1_000_000_000
TWAP_WINDOW_NS = 30 * 60 * NS
EXPIRY_HOUR_UTC = 8
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
CYCLES = {"quarterly": (3, 6, 9, 12), "monthly": tuple(range(1, 13))}
#: an instrument's life: listed later (not tradable yet), trading, settled (queryable, not tradable)
PENDING, TRADING, SETTLED = "pending", "trading", "settled"


def last_friday(year: int, month: int) -> int:
    """Day of the month of the last Friday of ``month``."""
    days = calendar.monthrange(year, month)[1]
    wd = calendar.weekday(year, month, days)  # Monday 0 … Friday 4
    return days - (wd - 4) % 7


def expiries(start_ns: int, cycle: str, count: int) -> list[int]:
    """The first ``count`` expiries (ns since the epoch, Friday 08:00 UTC)
    of ``cycle`` strictly after ``start_ns``.

    >>> [expiry_label(t) for t in expiries(date_ns("2026-12-03"), "quarterly", 3)]
    ['25DEC26', '26MAR27', '25JUN27']
    """
    months = CYCLES[cycle]
    start = datetime.fromtimestamp(start_ns // NS, tz=timezone.utc)
    year, month = start.year, start.month
    out: list[int] = []
    while len(out) < count:
        if month in months:
            day = last_friday(year, month)
            t = int(datetime(year, month, day, EXPIRY_HOUR_UTC, tzinfo=timezone.utc).timestamp()) * NS
            if t > start_ns:
                out.append(t)
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return out


def date_ns(text: str) -> int:
    """``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SSZ`` (UTC) as ns since the epoch."""
    t = text[:-1] + "+00:00" if text.endswith("Z") else text
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * NS


def expiry_label(expiry_ns: int) -> str:
    """``26MAR27`` for 2027-03-26 (Deribit's style: no leading zero on the day)."""
    d = datetime.fromtimestamp(expiry_ns // NS, tz=timezone.utc)
    return f"{d.day}{MONTHS[d.month - 1]}{d.year % 100:02d}"


def future_symbol(underlying: str, expiry_ns: int) -> str:
    return f"{underlying}-{expiry_label(expiry_ns)}"


def clamp_basis(basis: int, index: int, bound: tuple[int, int]) -> int:
    """``basis`` (1e-8 USD) within ±bound × index (bound a fraction num/den)."""
    num, den = bound
    cap = index * num // den
    return max(-cap, min(cap, basis))


def ema_step(basis: int, premium: int, samples: int) -> int:
    """One EMA step towards ``premium`` with α = 2 / (samples + 1), integers."""
    return basis + (premium - basis) * 2 // (samples + 1)


class DatedFuture(LinearPerpetual):
    """The contract arithmetic of a linear dated future, a mixin of
    :class:`~exchange_sim.instruments.FutureInstrument` (which holds
    ``expiry``, ``state``, ``basis``, ``basis_bound``, ``basis_samples``,
    the TWAP accumulator and the settlement price)."""

    __slots__ = ()
    kind = "future"
    funded = False  # a dated future converges by expiry, not by funding

    def mark_from_index(self, index_e8: int) -> int:
        """Mark = index + basis, in ticks (half up, ≥ 1). The basis is
        updated first from the book's mid (see the module docstring); a
        settled future keeps its settlement price as its mark."""
        if self.state == SETTLED:
            return self.mark
        book = self.book
        bid, ask = book.best_bid(), book.best_ask()
        premium = 0
        if bid is not None and ask is not None and self.mark:
            premium = (bid + ask) * self.tick_e8 // 2 - index_e8
        self.basis = clamp_basis(ema_step(self.basis, premium, self.basis_samples), index_e8, self.basis_bound)
        return self.mark_with_basis(index_e8)

    def mark_with_basis(self, index_e8: int) -> int:
        e8 = index_e8 + self.basis
        return max(1, (e8 + self.tick_e8 // 2) // self.tick_e8)

    def shock_basis(self, change_e8: int, index_e8: int) -> int:
        """Add ``change_e8`` (1e-8 USD) to the basis, clamped; the new mark."""
        self.basis = clamp_basis(self.basis + change_e8, index_e8, self.basis_bound)
        return self.mark_with_basis(index_e8)

    # ------------------------------------------------------------ TWAP

    def twap_advance(self, index_e8: int, t_from: int, t_to: int) -> None:
        """The index ``index_e8`` was in force over [t_from, t_to): add its
        share inside the settlement window."""
        lo = max(t_from, self.expiry - TWAP_WINDOW_NS)
        hi = min(t_to, self.expiry)
        if hi > lo:
            self.twap_acc += index_e8 * (hi - lo)
            self.twap_ns += hi - lo

    def settlement_e8(self, index_e8: int) -> int:
        """The TWAP (1e-8 USD, rounded half up) once the window is over; the
        window's part not seen (the venue started inside it) counts at
        ``index_e8``, the index at expiry."""
        missing = TWAP_WINDOW_NS - self.twap_ns
        total = self.twap_acc + index_e8 * missing
        return (2 * total + TWAP_WINDOW_NS) // (2 * TWAP_WINDOW_NS)

    def settlement_payout(self, qty: int, cost: int, price_e8: int) -> tuple[int, int]:
        """(payout, remainder) in settlement minor units of closing ``qty``
        lots of ``cost`` at ``price_e8``: exact value
        ``(qty × price_e8 / tick_e8 − cost) × value`` floored (against the
        account), and the fraction floored away, in units of 1 / tick_e8
        minor units (summed over accounts it is a whole number of minor
        units, booked to the fee ledger)."""
        num = (qty * price_e8 - cost * self.tick_e8) * self.value
        payout = num // self.tick_e8
        return payout, num - payout * self.tick_e8
