"""The venue's whole state, in one object: what every stage reads and what
a snapshot captures (:mod:`exchange_sim.snapshot`).

Stages hold a reference to it and write only their own part (the sequencer
the counters and the clock; matching the books and stops; orders the
open-order index; clearing the money). Caches (margin figures, the sweep's
numpy arrays) hang off it but are derived: a snapshot does not store them.
"""

from __future__ import annotations

from decimal import Decimal

from exchange_sim import config as config_mod
from exchange_sim.accounts import Account
from exchange_sim.config import Config
from exchange_sim.core.matching import MatchingEngine
from exchange_sim.instruments import Asset, Instrument
from exchange_sim.risk.margin import MarginEngine
from exchange_sim.risk.sweep import RiskArrays
from protocol.messages import MarginMode


class State:
    """Everything ``Venue.apply`` reads and writes."""

    __slots__ = (
        "config", "assets", "settle", "settle_name", "instruments", "by_underlying", "engines", "margin",
        "risk", "default_mode", "accounts", "arrays", "max_open_orders", "client_id_memory", "seq", "now",
        "next_order_id", "next_trade_id", "next_funding", "deposits", "withdrawals", "fees_collected",
        "fund_id", "funding_residue", "liquidation_fees",
    )

    def __init__(self, config: Config | None = None):
        self.config = config = config if config is not None else config_mod.default()
        settle_name = config.venue.settlement_asset
        self.assets: dict[str, Asset] = {a.name: Asset(a) for a in config.assets}
        self.settle = self.assets[settle_name]
        self.settle_name = settle_name
        self.instruments: dict[str, Instrument] = {
            c.symbol: Instrument(c, config, self.settle) for c in config.instruments
        }
        self.by_underlying: dict[str, list[Instrument]] = {}
        for ins in self.instruments.values():
            self.by_underlying.setdefault(ins.underlying, []).append(ins)
            if self.assets[ins.underlying].index:
                ins.mark = ins.mark_from_index(self.assets[ins.underlying].index)
        #: one matching engine per instrument: its book, stops and book sequence
        self.engines: dict[str, MatchingEngine] = {s: MatchingEngine(ins) for s, ins in self.instruments.items()}
        self.margin = MarginEngine(config, self.assets, self.instruments, self.settle)
        self.risk = config.risk
        self.default_mode = MarginMode(self.risk.default_mode)
        self.accounts: dict[int, Account] = {}
        self.arrays = RiskArrays(list(self.instruments), list(self.assets))
        self.max_open_orders = config.venue.max_open_orders
        self.client_id_memory = config.venue.client_id_memory
        self.seq = 0  # commands applied
        self.now = 0  # venue time, as given by the caller (ns)
        self.next_order_id = 1
        self.next_trade_id = 1
        self.next_funding: int | None = None  # venue time (ns) of the next settlement
        # money-conservation ledger, per asset
        self.deposits: dict[str, int] = {}
        self.withdrawals: dict[str, int] = {}
        self.fees_collected: dict[str, int] = {}
        self.fund_id = config.liquidation.insurance_account
        # --- leverage (the ledger an auditor queries: QueryLedger)
        #: of ``fees_collected``, what funding rounding left over, per asset
        self.funding_residue: dict[str, int] = {}
        #: liquidation fees paid to the insurance fund, per asset
        self.liquidation_fees: dict[str, int] = {}

    @property
    def insurance_seed(self) -> int:
        """The fund's opening balance, settlement minor units."""
        return int(Decimal(self.config.liquidation.insurance_seed) * self.settle.unit)

    def take_order_id(self) -> int:
        oid = self.next_order_id
        self.next_order_id = oid + 1
        return oid
