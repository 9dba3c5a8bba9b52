"""The whole venue state as one msgspec Struct: capture, restore, hash.

A snapshot holds everything ``Venue.apply`` reads: prices, books (orders in
priority order), untriggered stops, accounts (wallets, positions, isolated
allocations, margin mode, leverage per symbol, margin-call level, recently used client order
ids), the money ledgers, id counters, the clock, pending liquidations and
the history (trades, candles, funding, ended orders, own fills).
Caches (margin figures, the sweep's numpy arrays) are not stored: they are
recomputed from this state, and every margin float is computed in an order
that does not depend on a dict's history, so a restored venue produces the
same events, bit for bit.

``state_hash`` is the SHA-256 of the snapshot's canonical msgpack encoding:
two venues with equal hashes are in the same state.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import msgspec

from exchange_sim.accounts import Account
from exchange_sim.book import BUY, SELL, Order
from exchange_sim.config import Config
from exchange_sim.core import history
from exchange_sim.core.history import HistoryState
from protocol.messages import AttachedOrder, MarginMode, NewOrder, TimeInForce

SNAPSHOT_VERSION = 1


class OrderState(msgspec.Struct, array_like=True):
    order_id: int
    account: int
    side: int
    price: int
    qty: int
    filled: int
    stp: int
    client_order_id: str | None
    tif: str
    flags: int
    created_seq: int


class StopState(msgspec.Struct, array_like=True):
    order_id: int
    side: int
    cmd: NewOrder


# --- protective orders (docs/adr/0011-protective-orders.md)
class TrailState(msgspec.Struct, array_like=True):
    """What a conditional order holds beyond its command: a trailing stop's
    best price since activation (0: not active), its attached pair's peer
    and the entry it protects."""

    order_id: int
    best: int
    peer: int | None
    parent: int | None


class BracketState(msgspec.Struct, array_like=True):
    """An open entry's attached take-profit / stop-loss (core/protect.py)."""

    entry_id: int
    account: int
    side: int
    stp: str
    tp: AttachedOrder | None
    sl: AttachedOrder | None
    tp_id: int | None
    sl_id: int | None


class InstrumentState(msgspec.Struct, omit_defaults=True):
    symbol: str
    mark: int
    book_seq: int
    paused: bool
    bids: list[OrderState]  # priority order
    asks: list[OrderState]
    stops: list[StopState]
    # --- protective orders: added with defaults (omitted when empty), so
    # older snapshots still load and hash the same
    last_price: int = 0
    trails: list[TrailState] = []
    brackets: list[BracketState] = []


class PositionState(msgspec.Struct, array_like=True):
    symbol: str
    qty: int
    cost: int


class AccountState(msgspec.Struct, omit_defaults=True):
    id: int
    mode: str
    balances: list[tuple[str, int]]
    positions: list[PositionState]
    isolated: list[tuple[str, int]]
    level: int
    order_ids: list[int]  # the account's open orders, in its own order
    #: recently accepted client order ids -> order id, oldest first. Added
    #: later with a default (omitted when empty): older snapshots still load
    #: and hash the same, with nothing remembered
    client_ids: list[tuple[str, int]] = []
    # --- leverage: symbol -> leverage the account set (omitted when none)
    leverage: list[tuple[str, int]] = []


# --- dated futures (issue 16)
class FutureState(msgspec.Struct, array_like=True):
    """A dated future's life: state, basis (1e-8 USD), the settlement TWAP
    accumulated so far (Σ index × ns, up to ~1e25: in two 62-bit halves, as
    msgpack ints stop at 64 bits; ns), the settlement price once settled."""

    symbol: str
    state: str
    basis: int
    twap_hi: int
    twap_lo: int
    twap_ns: int
    settlement_price: int


_LO62 = (1 << 62) - 1


class VenueState(msgspec.Struct, omit_defaults=True):
    version: int
    seq: int
    now: int
    next_order_id: int
    next_trade_id: int
    next_funding: int | None
    index: list[tuple[str, int]]
    instruments: list[InstrumentState]
    accounts: list[AccountState]  # in the sweep's column order
    deposits: list[tuple[str, int]]
    withdrawals: list[tuple[str, int]]
    fees_collected: list[tuple[str, int]]
    pending_liquidations: list[int]
    # --- leverage: the ledger's finer lines (of fees_collected; paid to the fund)
    funding_residue: list[tuple[str, int]] = []
    liquidation_fees: list[tuple[str, int]] = []
    # --- house liquidity: when each pending account was flagged (venue ns), for the
    # liquidation grace; omitted when empty, so snapshots without a grace encode as before
    pending_since: list[tuple[int, int]] = []
    # --- dated futures (issue 16): added with a default, so older snapshots load and hash the same
    futures: list[FutureState] = []
    fut_t: int = 0
    # --- history: trades, candles, funding, order and fill history
    # (core/history.py). Added later with a default: an older snapshot loads
    # with an empty history
    history: HistoryState | None = None


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(VenueState)


def _order_state(o: Order) -> OrderState:
    return OrderState(o.order_id, o.account, o.side, o.price, o.qty, o.filled, o.stp, o.client_order_id,
                      str(o.tif), o.flags, o.created_seq)


# --- protective orders
def _protect_state(eng) -> dict:
    """An engine's protective-order state beyond its stops' commands (as
    fields of its ``InstrumentState``; empty ones are left out by
    ``omit_defaults``, so a venue without protective orders hashes as before)."""
    return {
        "last_price": eng.last_price,
        "trails": [TrailState(s.order_id, s.best, s.peer, s.parent) for s in eng.stops.values()
                   if s.best or s.peer is not None or s.parent is not None],
        "brackets": [BracketState(b.entry_id, b.account, b.side, str(b.stp), b.tp, b.sl, b.tp_id, b.sl_id)
                     for b in eng.brackets.values()],
    }


def _restore_protect(eng, s: InstrumentState) -> None:
    from exchange_sim.core.protect import Bracket
    from protocol.messages import StpMode

    eng.last_price = s.last_price
    for b in s.brackets:
        br = Bracket(b.entry_id, b.account, b.side, StpMode(b.stp), b.tp, b.sl)
        br.tp_id, br.sl_id = b.tp_id, b.sl_id
        eng.brackets[b.entry_id] = br


def capture(venue) -> VenueState:
    """The venue's state now. O(orders + accounts)."""
    instruments = []
    for sym, ins in venue.instruments.items():
        instruments.append(
            InstrumentState(
                symbol=sym, mark=ins.mark, book_seq=ins.book_seq, paused=ins.paused,
                bids=[_order_state(o) for o in ins.book.iter_orders(BUY)],
                asks=[_order_state(o) for o in ins.book.iter_orders(SELL)],
                stops=[StopState(s.order_id, s.side, s.cmd) for s in venue.engines[sym].stops.values()],
                **_protect_state(venue.engines[sym]),
            )
        )
    levels = venue.arrays.level
    accounts = []
    for acct_id in venue.arrays.ids:
        a = venue.accounts[acct_id]
        accounts.append(
            AccountState(
                id=a.id, mode=str(a.margin_mode), balances=list(a.balances.items()),
                positions=[PositionState(s, p.qty, p.cost) for s, p in a.positions.items()],
                isolated=list(a.isolated.items()), level=int(levels[a.col]), order_ids=list(a.orders),
                client_ids=list(a.client_ids.items()) if a.client_ids else [],
                leverage=sorted(a.leverage.items()),  # --- leverage
            )
        )
    return VenueState(
        version=SNAPSHOT_VERSION, seq=venue.seq, now=venue.now, next_order_id=venue.next_order_id,
        next_trade_id=venue.next_trade_id, next_funding=venue.next_funding,
        index=[(n, a.index) for n, a in venue.assets.items()], instruments=instruments, accounts=accounts,
        deposits=list(venue.deposits.items()), withdrawals=list(venue.withdrawals.items()),
        fees_collected=list(venue.fees_collected.items()), pending_liquidations=list(venue.liq.pending),
        # --- leverage
        funding_residue=list(venue.funding_residue.items()), liquidation_fees=list(venue.liquidation_fees.items()),
        pending_since=sorted(venue.liq.since.items()),
        # --- dated futures (issue 16)
        futures=[FutureState(f.symbol, f.state, f.basis, f.twap_acc >> 62, f.twap_acc & _LO62, f.twap_ns,
                             f.settlement_price) for f in venue.state.futures],
        fut_t=venue.state.fut_t,
        history=venue.history.capture(),  # --- history
    )


def encode(state: VenueState) -> bytes:
    return _encoder.encode(state)


def decode(data: bytes) -> VenueState:
    """Raises ``msgspec.DecodeError`` on a damaged snapshot."""
    return _decoder.decode(data)


def state_hash(venue) -> str:
    """SHA-256 (hex) of the venue's canonical state encoding."""
    return hashlib.sha256(encode(capture(venue))).hexdigest()


def restore(config: Config, state: VenueState):
    """A new venue in exactly ``state``. Raises ``ValueError`` if the state
    does not fit the config (unknown symbols, assets or a newer version)."""
    from exchange_sim.core.matching import StopOrder
    from exchange_sim.core.sequencer import Venue

    if state.version != SNAPSHOT_VERSION:
        raise ValueError(f"snapshot version {state.version} is not {SNAPSHOT_VERSION}")
    v = Venue(config)
    # a fresh venue opened the insurance fund with its seed: start from nothing
    v.clearing.clear_accounts()
    s = v.state
    s.seq, s.now = state.seq, state.now
    s.next_order_id, s.next_trade_id, s.next_funding = state.next_order_id, state.next_trade_id, state.next_funding
    s.deposits.update(state.deposits)
    s.withdrawals.update(state.withdrawals)
    s.fees_collected.update(state.fees_collected)
    s.funding_residue.update(state.funding_residue)  # --- leverage
    s.liquidation_fees.update(state.liquidation_fees)
    for name, index in state.index:
        if name not in v.assets:
            raise ValueError(f"snapshot asset {name!r} is not in the config")
        v.assets[name].index = index
    for a in state.accounts:
        acct = Account(a.id, MarginMode(a.mode))
        acct.balances = dict(a.balances)
        for p in a.positions:
            pos = acct.position(p.symbol)
            pos.qty, pos.cost = p.qty, p.cost
        acct.isolated = dict(a.isolated)
        if a.client_ids and s.client_id_memory:
            # the newest ``client_id_memory`` ids: a config that shrank the
            # window since the snapshot keeps its bound (and its invariant)
            acct.client_ids = OrderedDict(a.client_ids[-s.client_id_memory:])
        acct.leverage = dict(a.leverage)  # --- leverage
        v.clearing.restore_account(acct, a.level)
    by_id = {}
    for s in state.instruments:
        ins = v.instruments.get(s.symbol)
        if ins is None:
            raise ValueError(f"snapshot symbol {s.symbol!r} is not in the config")
        ins.mark, ins.book_seq, ins.paused = s.mark, s.book_seq, s.paused
        for o in s.bids + s.asks:
            order = Order(o.order_id, o.account, o.side, o.price, o.qty, o.stp, o.client_order_id, s.symbol,
                          TimeInForce(o.tif), o.flags, o.created_seq)
            order.filled = o.filled
            ins.book.add(order)
            by_id[o.order_id] = order
        trails = {t.order_id: t for t in s.trails}
        for st in s.stops:
            stop = StopOrder(st.order_id, st.cmd, st.side)
            t = trails.get(st.order_id)
            if t is not None:
                stop.best, stop.peer, stop.parent = t.best, t.peer, t.parent
            v.engines[s.symbol].stops[st.order_id] = stop
            by_id[st.order_id] = stop
        _restore_protect(v.engines[s.symbol], s)
        ins.book.take_changes()  # rebuilding is not a market-data change
    for a in state.accounts:
        acct = v.accounts[a.id]
        for oid in a.order_ids:
            order = by_id[oid]
            if type(order) is Order:
                v.orders.remember(acct, order)
            else:
                v.orders.remember_stop(acct, order)
    for acct_id in state.pending_liquidations:
        v.liq.flag(v.accounts[acct_id])
    v.liq.since.update(state.pending_since)
    # --- dated futures (issue 16)
    s_ = v.state
    s_.fut_t = state.fut_t
    for f in state.futures:
        ins = v.instruments.get(f.symbol)
        if ins is None or ins.kind != "future":
            raise ValueError(f"snapshot future {f.symbol!r} is not in the config")
        ins.state, ins.basis, ins.twap_acc, ins.twap_ns, ins.settlement_price = (
            f.state, f.basis, (f.twap_hi << 62) | f.twap_lo, f.twap_ns, f.settlement_price)
        ins.paused = f.state != "trading" or ins.paused
    if state.history is not None:  # --- history
        v.history.restore(state.history)
    else:  # a snapshot older than history: its open orders get their rows
        history.adopt_open_orders(v.history, (v.accounts[a.id] for a in state.accounts))
    return v
