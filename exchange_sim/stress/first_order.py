"""The first-order sweep: who is below maintenance margin at a shock, before any cascade.

Vectorized over accounts (numpy; dask.array for populations beyond memory)
and looped over shocks. From the snapshot's state — balances, positions'
quantity and cost, isolated allocations — and the config's units, haircut
brackets and margin tiers, for each shock (one relative move per asset):

- index' = max(1, round(index × (1 + move)))  (1e-8 USD, as the full run
  sets it), mark' = index' rounded to the tick, half up (the venue's rule);
- collateral = Σ_assets value − haircut(value), haircut applied marginally
  by USD value bracket; a negative balance counts in full;
- uPnL = Σ_symbols (qty × mark' − cost) × USD per tick×lot;
- equity = collateral + uPnL + isolated allocations;
- MM = Σ_symbols tiered MM of |qty × mark'| (cross margin).

What it leaves out, on purpose (the full run has all of it): liquidation and
its price impact, insurance, ADL, conversions, funding, fees. Simplifications:
portfolio-margin accounts are held to their cross MM (the shipped portfolio
profile is calibrated so one-directional books need exactly that and hedges
less: an upper bound), isolated positions are pooled with the wallet.
At zero shock equity equals the venue's own figure for every account and MM
equals it for cross accounts (tests/test_stress.py checks both).

``loss = max(0, -equity)``: what the account would leave unpaid if it
defaulted at that shock with no liquidation help. Cover-1 is the largest
loss, Cover-2 the sum of the two largest.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

from exchange_sim.config import Config
from protocol.messages import PRICE_SCALE


class SweepResult(msgspec.Struct, kw_only=True):
    """Per shock (same order as the moves given)."""

    below_mm: list[int]  # accounts with equity < liquidation_ratio x MM (and MM > 0)
    shortfall: list[float]  # Σ loss over accounts, USD
    cover1: list[float]
    cover2: list[float]


class Population:
    """The arrays of a state: one row per account, columns per asset / symbol.

    ``bal``: whole units per asset (config order); ``qty``: lots and
    ``cost``: price ticks × lots per symbol; ``iso``: isolated allocations, USD.
    """

    __slots__ = ("ids", "bal", "qty", "cost", "iso", "meta", "_packed")

    def __init__(self, ids, bal, qty, cost, iso, meta: "Meta"):
        self.ids, self.bal, self.qty, self.cost, self.iso, self.meta = ids, bal, qty, cost, iso, meta
        self._packed = None

    def __len__(self) -> int:
        return len(self.ids)

    def packed(self):
        """Per asset and per symbol, only the rows that hold it: most accounts
        hold one or two assets and one symbol, so a shock touches ~3 values
        per account instead of every column. Built once, on first use."""
        if self._packed is None:
            n = len(self.ids)

            def pack(*cols):
                rows = np.flatnonzero(cols[0])
                if len(rows) == n:
                    return None, cols
                return rows, tuple(c[rows] for c in cols)

            assets = []
            for col in range(self.bal.shape[1]):
                rows, (b,) = pack(self.bal[:, col])
                if len(b):
                    assets.append((col, rows, b))
            symbols = []
            for s in range(self.qty.shape[1]):
                rows, (q, c) = pack(self.qty[:, s], self.cost[:, s])
                if len(q):
                    symbols.append((s, rows, q, c))
            self._packed = (assets, symbols)
        return self._packed


class Meta:
    """What does not depend on the accounts: units, brackets, base prices."""

    __slots__ = ("assets", "symbols", "und", "tick_e8", "usd_per", "base_e8", "haircuts", "tiers",
                 "settle_col", "liq_ratio")

    def __init__(self, cfg: Config, index: dict[str, int]):
        from decimal import Decimal

        self.assets = [a.name for a in cfg.assets]
        self.settle_col = self.assets.index(cfg.venue.settlement_asset)
        settle_unit = 10 ** next(a.decimals for a in cfg.assets if a.name == cfg.venue.settlement_asset)
        self.symbols = [i.symbol for i in cfg.instruments]
        self.und = np.array([self.assets.index(i.underlying) for i in cfg.instruments], dtype=np.int64)
        self.tick_e8 = np.array([int(Decimal(i.tick_size) * PRICE_SCALE) for i in cfg.instruments], dtype=np.int64)
        # USD per (1 tick × 1 lot): value / settlement unit, exact in binary for the shipped units
        self.usd_per = np.array([float(int(Decimal(i.tick_size) * Decimal(i.lot_size) * settle_unit)) / settle_unit
                                 for i in cfg.instruments])
        self.base_e8 = np.array([index.get(a, 0) for a in self.assets], dtype=np.int64)
        self.base_e8[self.settle_col] = PRICE_SCALE
        self.haircuts = [_brackets([(r[0], r[1]) for r in a.haircut]) for a in cfg.assets]
        self.tiers = [_brackets([(t[0], t[2]) for t in i.margin_tiers]) for i in cfg.instruments]
        self.liq_ratio = cfg.risk.liquidation_ratio

    def index_after(self, moves: dict[str, float]) -> np.ndarray:
        """Index per asset (1e-8 USD) after relative ``moves``; the rounding of the full run."""
        out = self.base_e8.copy()
        for asset, move in moves.items():
            col = self.assets.index(asset)
            out[col] = max(1, round(int(self.base_e8[col]) * (1.0 + move)))
        return out


def _brackets(rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    uppers = np.array([float(r[0]) for r in rows])
    lowers = np.concatenate([[0.0], uppers[:-1]])
    return lowers, uppers - lowers, np.array([float(r[1]) for r in rows])


def _amount(x: np.ndarray, br) -> np.ndarray:
    """Σ rate_k × (part of x inside bracket k), x ≥ 0 (marginal, like income tax)."""
    lowers, widths, rates = br
    out = np.zeros_like(x)
    for lo, w, r in zip(lowers, widths, rates):
        if r:
            out += r * np.clip(x - lo, 0.0, w)
    return out


def from_state(cfg: Config, state) -> Population:
    """The arrays of a :class:`exchange_sim.snapshot.VenueState`."""
    meta = Meta(cfg, dict(state.index))
    units = {a.name: 10**a.decimals for a in cfg.assets}
    acol = {a: k for k, a in enumerate(meta.assets)}
    scol = {s: k for k, s in enumerate(meta.symbols)}
    n = len(state.accounts)
    bal = np.zeros((n, len(meta.assets)))
    qty = np.zeros((n, len(meta.symbols)))
    cost = np.zeros((n, len(meta.symbols)))
    iso = np.zeros(n)
    ids = np.zeros(n, dtype=np.int64)
    settle_unit = units[meta.assets[meta.settle_col]]
    for r, a in enumerate(state.accounts):
        ids[r] = a.id
        for asset, amount in a.balances:
            bal[r, acol[asset]] = amount / units[asset]
        for p in a.positions:
            qty[r, scol[p.symbol]] = p.qty
            cost[r, scol[p.symbol]] = p.cost
        iso[r] = sum(amount for _, amount in a.isolated) / settle_unit
    return Population(ids, bal, qty, cost, iso, meta)


def figures(pop: Population, index_e8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(equity, MM) per account, USD, at the given index prices."""
    m = pop.meta
    price = index_e8 / PRICE_SCALE
    equity = pop.iso.copy()
    mm = np.zeros(len(pop))
    assets, symbols = pop.packed()
    for col, rows, b in assets:
        v = b * price[col]
        br = m.haircuts[col]
        counted = np.where(v > 0, v - _amount(np.maximum(v, 0.0), br), v) if br[2].any() else v
        if rows is None:
            equity += counted
        else:
            equity[rows] += counted  # rows are unique: a plain fancy-index add is exact
    idx = index_e8[m.und]
    marks = np.maximum(1, (idx + m.tick_e8 // 2) // m.tick_e8).astype(np.float64)
    for s, rows, q, c in symbols:
        exposure = q * marks[s]
        upnl = (exposure - c) * m.usd_per[s]
        req = _amount(np.abs(exposure) * m.usd_per[s], m.tiers[s])
        if rows is None:
            equity += upnl
            mm += req
        else:
            equity[rows] += upnl
            mm[rows] += req
    return equity, mm


def below_mm(pop: Population, index_e8: np.ndarray) -> np.ndarray:
    equity, mm = figures(pop, index_e8)
    return (mm > 0) & (equity < pop.meta.liq_ratio * mm)


def losses(pop: Population, index_e8: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, -figures(pop, index_e8)[0])


def covers(loss: np.ndarray, ids: np.ndarray) -> tuple[float, float, list[tuple[int, float]]]:
    """(Cover-1, Cover-2, the five worst (account, loss) with loss > 0, worst first)."""
    if not len(loss):
        return 0.0, 0.0, []
    order = np.lexsort((ids, -loss))[:5]  # by loss down, ties by account id
    top = [(int(ids[i]), float(loss[i])) for i in order if loss[i] > 0]
    c1 = top[0][1] if top else 0.0
    c2 = sum(x for _, x in top[:2])
    return c1, c2, top


def _moves_matrix(meta: Meta, shocks: list[dict[str, float]]) -> np.ndarray:
    return np.stack([meta.index_after(s) for s in shocks]) if shocks else np.zeros((0, len(meta.assets)), np.int64)


def _partial(pop: Population, index_rows: np.ndarray) -> np.ndarray:
    """Per shock: [below count, shortfall, largest loss, second largest loss]."""
    out = np.zeros((len(index_rows), 4))
    for k, idx in enumerate(index_rows):
        equity, mm = figures(pop, idx)
        out[k, 0] = np.count_nonzero((mm > 0) & (equity < pop.meta.liq_ratio * mm))
        loss = np.maximum(0.0, -equity)
        out[k, 1] = loss.sum()
        if len(loss) >= 2:
            two = np.partition(loss, len(loss) - 2)[-2:]
            out[k, 2], out[k, 3] = two.max(), two.min()
        elif len(loss):
            out[k, 2] = loss[0]
    return out


def _combine(parts: list[np.ndarray]) -> SweepResult:
    stacked = np.stack(parts)  # blocks x shocks x 4
    below = stacked[:, :, 0].sum(axis=0)
    shortfall = stacked[:, :, 1].sum(axis=0)
    tops = np.sort(np.concatenate([stacked[:, :, 2], stacked[:, :, 3]], axis=0), axis=0)
    c1 = tops[-1]
    c2 = tops[-1] + (tops[-2] if len(tops) > 1 else 0.0)
    return SweepResult(below_mm=[int(x) for x in below], shortfall=[float(x) for x in shortfall],
                       cover1=[float(x) for x in c1], cover2=[float(x) for x in c2])


def sweep(pop: Population, shocks: list[dict[str, float]], block: int = 262_144) -> SweepResult:
    """First-order figures of every shock, over blocks of ``block`` accounts
    (temporaries stay ~block × columns × 8 bytes). O(accounts × shocks)."""
    rows = _moves_matrix(pop.meta, shocks)
    parts = []
    for lo in range(0, max(len(pop), 1), block):
        sl = slice(lo, lo + block)
        parts.append(_partial(Population(pop.ids[sl], pop.bal[sl], pop.qty[sl], pop.cost[sl], pop.iso[sl],
                                         pop.meta), rows))
    return _combine(parts)


# ------------------------------------------------------- synthetic populations

SYMBOLS = ("BTC-PERP", "ETH-PERP", "SOL-PERP")
SYMBOL_P = (0.5, 0.3, 0.2)


def draw(n: int, seed: int) -> dict[str, np.ndarray]:
    """The documented trader population law (docs/stress-testing.md), shared
    by the generated venue and the synthetic arrays:

    - accounts come in pairs (2k long, 2k+1 short) on one symbol: BTC-PERP
      50%, ETH-PERP 30%, SOL-PERP 20%, so positions net to zero;
    - equity log-normal, median $10,000 (σ = 1), clipped to $500..$1,000,000;
    - target leverage log-uniform in 2x..20x; the pair trades the smaller of
      the two target sizes, so each side's leverage is at most its draw;
    - collateral mix: 60% USDT only, 25% half USDT half BTC, 15% half USDC
      half ETH (coins at the index, before haircuts);
    - margin mode: 70% cross, 30% portfolio.
    """
    rng = np.random.default_rng(seed)
    pairs = (n + 1) // 2
    return {
        "symbol": rng.choice(len(SYMBOLS), size=pairs, p=SYMBOL_P),
        "equity": np.clip(np.exp(rng.normal(math.log(10_000.0), 1.0, size=2 * pairs)), 500.0, 1_000_000.0)[:n],
        "leverage": np.exp(rng.uniform(math.log(2.0), math.log(20.0), size=2 * pairs))[:n],
        "mix": rng.choice(3, size=2 * pairs, p=(0.6, 0.25, 0.15))[:n],
        "portfolio": (rng.random(size=2 * pairs) < 0.3)[:n],
    }


def synthetic(cfg: Config, n: int, seed: int) -> Population:
    """``n`` accounts of the :func:`draw` law as arrays, positions entered at
    the config's start-up marks, for the sweep at sizes a venue cannot hold
    (10^6 accounts). No venue is built: same law, first order only."""
    from exchange_sim.instruments import price_to_e8

    index = {a.name: price_to_e8(a.index_price) for a in cfg.assets if a.index_price is not None}
    meta = Meta(cfg, index)
    d = draw(n, seed)
    return _arrays(meta, d, n)


def _arrays(meta: Meta, d: dict, n: int) -> Population:
    scol = [meta.symbols.index(s) for s in SYMBOLS]
    marks = np.maximum(1, (meta.base_e8[meta.und] + meta.tick_e8 // 2) // meta.tick_e8).astype(np.float64)
    pair = np.arange(n) // 2
    sym = np.array(scol)[d["symbol"][pair]]
    lot_usd = marks[sym] * meta.usd_per[sym]  # USD per lot at mark
    target = d["equity"] * d["leverage"] / lot_usd
    partner = np.minimum(np.arange(n) ^ 1, n - 1)
    lots = np.maximum(1.0, np.floor(np.minimum(target, target[partner])))
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    qty = np.zeros((n, len(meta.symbols)))
    cost = np.zeros((n, len(meta.symbols)))
    rows = np.arange(n)
    qty[rows, sym] = sign * lots
    cost[rows, sym] = sign * lots * marks[sym]
    bal = np.zeros((n, len(meta.assets)))
    price = meta.base_e8 / PRICE_SCALE
    eq = d["equity"]
    col = {a: meta.assets.index(a) for a in ("USDT", "USDC", "BTC", "ETH")}
    only = d["mix"] == 0
    bal[only, col["USDT"]] = eq[only]
    btc = d["mix"] == 1
    bal[btc, col["USDT"]] = eq[btc] / 2
    bal[btc, col["BTC"]] = eq[btc] / 2 / price[col["BTC"]]
    eth = d["mix"] == 2
    bal[eth, col["USDC"]] = eq[eth] / 2
    bal[eth, col["ETH"]] = eq[eth] / 2 / price[col["ETH"]]
    return Population(np.arange(10, 10 + n, dtype=np.int64), bal, qty, cost, np.zeros(n), meta)


def sweep_dask(cfg: Config, n: int, seed: int, shocks: list[dict[str, float]], block: int = 250_000,
               scheduler=None) -> SweepResult:
    """The sweep of :func:`synthetic`-law accounts as a dask.array: a
    ``(n, columns)`` array whose blocks are generated where they are used
    (block ``b`` draws with seed ``(seed, b)``), so no process ever holds
    more than a block; one partial result per block, combined here. Needs the
    ``dask`` extra. ``scheduler``: a dask scheduler name or a Client."""
    import dask

    from exchange_sim.instruments import price_to_e8

    index = {a.name: price_to_e8(a.index_price) for a in cfg.assets if a.index_price is not None}
    meta = Meta(cfg, index)
    rows = _moves_matrix(meta, shocks)
    width = 2 * len(meta.symbols) + len(meta.assets)
    chunks = tuple(min(block, n - lo) for lo in range(0, n, block))
    stacked = _stacked(meta, seed, width, chunks)
    parts = [dask.delayed(_block_partial)(blk, meta, rows) for blk in stacked.to_delayed().ravel()]
    computed = dask.compute(*parts, scheduler=scheduler) if scheduler is not None else dask.compute(*parts)
    return _combine(list(computed))


def _stacked(meta: Meta, seed: int, width: int, chunks: tuple[int, ...]):
    import dask
    import dask.array as da

    blocks = [da.from_delayed(dask.delayed(_synthetic_block)(meta, seed, b, rows), shape=(rows, width),
                              dtype=np.float64) for b, rows in enumerate(chunks)]
    return da.concatenate(blocks, axis=0)


def _synthetic_block(meta: Meta, seed: int, block_no: int, rows: int) -> np.ndarray:
    d = draw(rows, int(np.random.SeedSequence([seed, block_no]).generate_state(1)[0]))
    p = _arrays(meta, d, rows)
    return np.hstack([p.qty, p.cost, p.bal])


def _block_partial(blk: np.ndarray, meta: Meta, rows: np.ndarray) -> np.ndarray:
    s, a = len(meta.symbols), len(meta.assets)
    n = len(blk)
    pop = Population(np.arange(n), blk[:, 2 * s:2 * s + a], blk[:, :s], blk[:, s:2 * s], np.zeros(n), meta)
    return _partial(pop, rows)
