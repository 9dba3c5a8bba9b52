"""Views: reads of the state that change nothing and need no sequence
number, so the server answers them without journaling them
(``Venue.query``; docs/adr/0007-pipeline.md), and the AccountUpdate builder
the other stages use for their account events. The history queries are
answered from the history stage (:mod:`.history`, docs/history.md).
"""

from __future__ import annotations

from exchange_sim.accounts import Account
from exchange_sim.book import BUY, FLAG_REDUCE_ONLY, SELL
from exchange_sim.core import reject
from exchange_sim.core.matching import StopOrder
from exchange_sim.core.reject import R, Reject
from exchange_sim.core.state import State
from exchange_sim.risk import explain as explain_mod
from exchange_sim.risk import leverage as leverage_mod
from protocol import messages as M
from protocol.messages import (
    PROTOCOL_VERSION,
    AccountUpdate,
    AssetInfo,
    BookSnapshot,
    Explain,
    InstrumentInfo,
    Instruments,
    OpenOrders,
    OrderType,
    OrderView,
    PositionView,
    QueryAccount,
    QueryBook,
    QueryExplain,
    QueryInstruments,
    QueryOpenOrders,
    Side,
)

_SIDE_ENUM = {BUY: Side.BUY, SELL: Side.SELL}
#: the commands :meth:`Views.query` answers
QUERIES = (QueryAccount, QueryOpenOrders, QueryBook, QueryInstruments, QueryExplain,
           M.QueryLeverage, M.QueryLeverageTiers, M.QueryLedger,
           # --- history
           M.QueryTrades, M.QueryCandles, M.QueryTicker, M.QueryFundingHistory, M.QueryPremiumIndex,
           M.QueryOrderHistory, M.QueryMyTrades, M.QueryOrder)


class Views:
    """Read-only answers; see the module docstring."""

    __slots__ = ("s", "margin", "instruments", "history")

    def __init__(self, state: State):
        self.s = state
        self.margin = state.margin
        self.instruments = state.instruments
        #: the history stage (core/history.py), set by the sequencer that feeds it
        self.history = None

    def query(self, cmd) -> list:
        """The answer to one Query* command (raises :class:`Reject`)."""
        match type(cmd):  # value patterns: no isinstance on a Struct
            case M.QueryAccount:
                return [self.account_update(reject.account(self.s, cmd.account))]
            case M.QueryOpenOrders:
                return [self.open_orders(cmd)]
            case M.QueryBook:
                ins = reject.instrument(self.s, cmd.symbol)
                depth = cmd.depth
                if depth is not None and not reject.int_in(depth, 1, 10_000):
                    raise Reject(R.INVALID_FIELD, "depth must be 1..10000")
                return [self.book_snapshot(ins.symbol, depth)]
            case M.QueryInstruments:
                return [self.instrument_info()]
            case M.QueryExplain:
                return [self.explain(reject.account(self.s, cmd.account))]
            # --- leverage
            case M.QueryLeverage:
                return [self.leverage(cmd)]
            case M.QueryLeverageTiers:
                return [self.leverage_tiers(cmd)]
            case M.QueryLedger:
                return [self.ledger()]
            # --- history: the past, from the history stage (core/history.py)
            case (M.QueryTrades | M.QueryCandles | M.QueryTicker | M.QueryPremiumIndex | M.QueryFundingHistory
                  | M.QueryOrderHistory | M.QueryMyTrades | M.QueryOrder) if not self.s.config.history.enabled:
                raise Reject(R.NOT_ALLOWED, f"{type(cmd).__name__}: this venue keeps no history "
                                            "([history] enabled = false in its config)")
            case M.QueryTrades:
                return [self.history.trades_of(cmd)]
            case M.QueryCandles:
                return [self.history.candles(cmd)]
            case M.QueryTicker:
                if cmd.symbol is not None:
                    return [self.history.ticker(reject.instrument(self.s, cmd.symbol).symbol)]
                return [M.Tickers(tickers=[self.history.ticker(sym) for sym in self.instruments])]
            case M.QueryPremiumIndex:
                if cmd.symbol is not None:
                    return [self.history.premium_index(reject.instrument(self.s, cmd.symbol).symbol)]
                return [M.PremiumIndexes(
                    items=[self.history.premium_index(sym) for sym, ins in self.instruments.items() if ins.funded]
                )]
            case M.QueryFundingHistory:
                return [self.history.funding_history(cmd)]
            case M.QueryOrderHistory:
                return [self.history.order_history(cmd)]
            case M.QueryMyTrades:
                return [self.history.my_trades_of(cmd)]
            case M.QueryOrder:
                return [self.history.order(cmd)]
        raise Reject(R.UNKNOWN_MESSAGE, f"{type(cmd).__name__} is not a query")

    def account_update(self, acct: Account) -> AccountUpdate:
        """The account's whole state. Each PositionView is a function of the
        position's qty and cost and the mark only, so it is cached on the
        account under those three and rebuilt only when one moved: after a
        fill that is the traded symbol's view alone. (Views are shared by the
        events that carry them; events are read-only.)"""
        m = self.margin
        m.fresh(acct)
        positions = []
        views = acct.views
        instruments = self.instruments
        for sym in sorted(acct.positions):
            pos = acct.positions[sym]
            qty = pos.qty
            if not qty:
                continue
            ins = instruments[sym]
            mark = ins.mark
            cached = views.get(sym)
            if cached is not None and cached[0] == qty and cached[1] == pos.cost and cached[2] == mark:
                positions.append(cached[3])
                continue
            notional = ins.notional(mark, abs(qty))
            view = PositionView(
                symbol=sym, qty=qty, entry_price=pos.entry_price(), mark=mark, notional=notional,
                upnl=ins.upnl(qty, pos.cost),
                # the tiers unless the account set a leverage (a view per fill: keep it one call)
                im=ins.im_tiers.amount(notional / ins.settle_unit) if not acct.leverage
                else m.position_im(acct, ins, notional / ins.settle_unit),
                mm=ins.mm_tiers.amount(notional / ins.settle_unit),
            )
            views[sym] = (qty, pos.cost, mark, view)
            positions.append(view)
        balances = acct.balances
        equity, ratio = m.equity_and_ratio(acct)
        return AccountUpdate(
            account=acct.id, balances=dict(sorted(balances.items())) if len(balances) > 1 else balances.copy(),
            positions=positions, collateral=acct.collateral, equity=equity, im=acct.im_total,
            mm=acct.mm, margin_ratio=ratio, margin_mode=acct.margin_mode, free=m.free(acct, equity),
            allocated=sum(acct.isolated.values()) if acct.isolated else 0,
        )

    def open_orders(self, cmd: QueryOpenOrders) -> OpenOrders:
        acct = reject.account(self.s, cmd.account)
        if cmd.symbol is not None:
            reject.instrument(self.s, cmd.symbol)
        views = [
            order_view(o)
            for o in sorted(acct.orders.values(), key=lambda o: o.order_id)
            if cmd.symbol is None or o.symbol == cmd.symbol
        ]
        return OpenOrders(account=acct.id, orders=views)

    def book_snapshot(self, symbol: str, depth: int | None = None) -> BookSnapshot:
        ins = self.instruments[symbol]
        return BookSnapshot(
            symbol=symbol, seq=ins.book_seq, bids=ins.book.depth(BUY, depth), asks=ins.book.depth(SELL, depth)
        )

    def instrument_info(self) -> Instruments:
        return Instruments(
            protocol_version=PROTOCOL_VERSION,
            instruments=[
                InstrumentInfo(
                    symbol=i.symbol, underlying=i.underlying, settlement=i.settlement,
                    tick_size=str(i.tick_size), lot_size=str(i.lot_size), min_notional=i.min_notional_str,
                    max_qty=i.max_qty, maker_fee=i.maker_fee_str, taker_fee=i.taker_fee_str,
                    # --- dated futures (issue 16)
                    kind=i.kind, expiry=i.expiry, state=i.state,
                    settlement_price=getattr(i, "settlement_price", 0) or None,
                )
                for i in self.instruments.values()
            ],
            assets=[AssetInfo(name=a.name, decimals=a.decimals, index_price=a.index or None) for a in self.s.assets.values()],
        )

    def explain(self, acct: Account) -> Explain:
        """Every margin figure of one account, and the same holdings under each
        margin mode side by side (see :mod:`exchange_sim.risk.explain`)."""
        return explain_mod.build(self.s, acct)

    # --- leverage

    def _symbols(self, symbol) -> list:
        if symbol is None:
            return list(self.instruments.values())
        return [reject.instrument(self.s, symbol)]

    def leverage(self, cmd: M.QueryLeverage) -> M.Leverage:
        """Per symbol: the leverage in use, the most the tier of the current
        notional (position and open orders, worse side) allows, the brackets."""
        acct = reject.account(self.s, cmd.account)
        self.margin.fresh(acct)
        out = []
        for ins in self._symbols(cmd.symbol):
            lev = acct.leverage.get(ins.symbol)
            notional = abs(acct.hyp.get(ins.symbol, 0.0))
            out.append(M.SymbolLeverage(
                symbol=ins.symbol, leverage=leverage_mod.default_leverage(ins) if lev is None else lev,
                set=lev is not None, max_leverage=self.max_leverage(acct, ins), notional=notional,
                tiers=leverage_mod.tiers(ins).tiers,
            ))
        return M.Leverage(account=acct.id, symbols=out)

    def max_leverage(self, acct: Account, ins) -> int:
        """The most the tier of the account's notional on ``ins`` allows."""
        self.margin.fresh(acct)
        return leverage_mod.max_leverage(ins, abs(acct.hyp.get(ins.symbol, 0.0)))

    def leverage_tiers(self, cmd: M.QueryLeverageTiers) -> M.LeverageTiers:
        return M.LeverageTiers(symbols=[leverage_mod.tiers(ins) for ins in self._symbols(cmd.symbol)])

    def ledger(self) -> M.Ledger:
        """The venue's money ledger per asset (admin; the server checks)."""
        s = self.s
        fund = s.accounts.get(s.fund_id)
        rows = []
        for name in s.assets:
            rows.append(M.LedgerAsset(
                asset=name, deposits=s.deposits.get(name, 0), withdrawals=s.withdrawals.get(name, 0),
                fees_collected=s.fees_collected.get(name, 0), funding_residue=s.funding_residue.get(name, 0),
                liquidation_fees=s.liquidation_fees.get(name, 0),
                insurance_fund=fund.balances.get(name, 0) if fund is not None else 0,
            ))
        return M.Ledger(insurance_account=s.fund_id, assets=rows)


def order_view(o) -> OrderView:
    if type(o) is StopOrder:
        c = o.cmd
        return OrderView(
            order_id=o.order_id, symbol=o.symbol, side=c.side, type=c.type, tif=c.tif, qty=c.qty or 0, filled=0,
            price=c.price, stop_price=c.stop_price, reduce_only=c.reduce_only, client_order_id=c.client_order_id,
            # --- protective orders
            working_type=c.working_type, close_position=c.close_position, callback_bps=c.callback_bps,
            activation_price=c.activation_price, trail_best=o.best or None, parent_order_id=o.parent,
        )
    return OrderView(
        order_id=o.order_id, symbol=o.symbol, side=_SIDE_ENUM[o.side], type=OrderType.LIMIT, tif=o.tif,
        qty=o.qty, filled=o.filled, price=o.price, reduce_only=bool(o.flags & FLAG_REDUCE_ONLY),
        client_order_id=o.client_order_id,
    )
