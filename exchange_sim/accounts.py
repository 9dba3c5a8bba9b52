"""Accounts, positions and fill settlement, in integers.

A position keeps its signed quantity (lots) and its signed **cost**: the sum
of ``price_ticks * lots`` of the fills that opened it, minus the share taken
out by fills that reduced it. Then, exactly,

    unrealized PnL = (qty * mark - cost) * value        (settlement minor units)

and every fill changes ``balance + unrealized PnL`` of each side by the same
amount whatever the rounding of the cost share removed on a partial close,
so money is conserved to the last minor unit. The cost share removed is
rounded *up* (toward +inf), which makes the realized PnL of a partial close
round against the account; a full close removes the cost exactly.
"""

from __future__ import annotations

from collections import OrderedDict

from protocol.messages import MarginMode


class Position:
    __slots__ = ("symbol", "qty", "cost")

    def __init__(self, symbol: str):
        self.symbol = symbol
        self.qty = 0  # lots; + long, - short
        self.cost = 0  # Σ price_ticks × lots, same sign as qty

    def entry_price(self) -> float:
        """Average entry price in ticks (0.0 when flat)."""
        return self.cost / self.qty if self.qty else 0.0

    def apply_fill(self, signed_qty: int, price: int) -> int:
        """Add a fill of ``signed_qty`` lots at ``price`` ticks.

        Returns the realized PnL in ticks×lots (multiply by the instrument's
        ``value`` for minor units). O(1).
        """
        qty = self.qty
        if qty == 0 or (qty > 0) == (signed_qty > 0):
            self.qty = qty + signed_qty
            self.cost += signed_qty * price
            return 0
        size = qty if qty > 0 else -qty
        trade = signed_qty if signed_qty > 0 else -signed_qty
        closed = trade if trade < size else size
        # cost share of the closed lots, rounded up: realized rounds against us
        share = -((-self.cost * closed) // size)
        closed_signed = closed if qty > 0 else -closed
        realized = closed_signed * price - share
        self.qty = qty - closed_signed
        self.cost -= share
        if trade > closed:  # the fill flips the position
            rest = signed_qty + closed_signed
            self.qty = rest
            self.cost = rest * price
        return realized


class Account:
    """One trading account: wallet, positions, open orders and margin caches."""

    __slots__ = (
        "id", "balances", "positions", "orders", "by_cid", "open_totals",
        "margin_mode", "cache_epoch", "collateral", "upnl", "mm", "hyp",
        "im_total", "reduce_only_orders", "isolated", "col",
        "cv_parts", "upnl_parts", "expo", "mm_parts", "im_parts", "views", "client_ids",
        "leverage",
    )

    def __init__(self, account_id: int, margin_mode: MarginMode = MarginMode.CROSS):
        self.id = account_id
        self.balances: dict[str, int] = {}
        self.positions: dict[str, Position] = {}
        self.orders: dict = {}  # order_id -> book Order or StopOrder
        self.by_cid: dict = {}  # client_order_id -> order
        #: client_order_id -> order id of the last ``venue.client_id_memory``
        #: accepted orders that carried one, oldest first: a new order reusing
        #: one is refused (core.entry.Entry.new_order). In snapshots; None until the first.
        self.client_ids: OrderedDict[str, int] | None = None
        #: per symbol [buy lots, Σ buy price×lots, sell lots, Σ sell price×lots]
        #: of resting orders: the pre-trade check reads these, never rescans
        self.open_totals: dict[str, list[int]] = {}
        self.margin_mode = margin_mode
        self.reduce_only_orders = 0
        #: isolated mode: settlement minor units allocated per symbol
        self.isolated: dict[str, int] = {}
        #: column of this account in the risk sweep's arrays
        self.col = -1
        # Margin caches, valid while cache_epoch == the engine's epoch (risk.margin)
        self.cache_epoch = -1
        self.collateral = 0.0
        self.upnl = 0
        self.mm = 0.0
        #: per symbol, signed USD exposure if the worse side of its orders filled
        self.hyp: dict[str, float] = {}
        self.im_total = 0.0
        # The terms the totals above are made of, so that a change to one asset
        # or one symbol recomputes only its terms (risk.margin): counted value
        # per asset, uPnL and signed USD notional per position; the model's MM
        # and IM terms, per symbol for an additive model (cross), per
        # underlying for a netted one (portfolio), none for the others.
        self.cv_parts: dict[str, float] = {}
        self.upnl_parts: dict[str, int] = {}
        self.expo: dict[str, float] = {}
        self.mm_parts: dict[str, float] = {}
        self.im_parts: dict[str, float] = {}
        #: symbol -> (qty, cost, mark, PositionView) last sent (core.views.Views.account_update)
        self.views: dict[str, tuple] = {}
        # --- leverage
        #: symbol -> leverage the account set (SetLeverage); a symbol not here
        #: has none of its own: its IM is the notional tiers' (risk.leverage)
        self.leverage: dict[str, int] = {}

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol)
        return pos

    def position_qty(self, symbol: str) -> int:
        pos = self.positions.get(symbol)
        return pos.qty if pos is not None else 0

    def credit(self, asset: str, amount: int) -> int:
        """Add ``amount`` (may be negative) and return the new balance.
        Invalidates the margin caches: the next ``fresh()`` recomputes them.
        (The fill path updates them in place instead: ``MarginEngine.touch``.)"""
        bal = self.balances.get(asset, 0) + amount
        self.balances[asset] = bal
        self.cache_epoch = -1
        return bal
