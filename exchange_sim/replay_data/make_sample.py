"""Write the replay sample: 30 s of a synthetic BTCUSDT perpetual, Tardis layouts.

    python -m exchange_sim.replay_data.make_sample [DIR]     # default: the shipped sample/

Three files, the columns Tardis (tardis.dev "downloadable CSV files") uses:

- ``derivative_ticker.csv``: ``exchange,symbol,timestamp,local_timestamp,
  funding_timestamp,funding_rate,predicted_funding_rate,open_interest,
  last_price,index_price,mark_price`` — one row a second;
- ``incremental_book_L2.csv``: ``exchange,symbol,timestamp,local_timestamp,
  is_snapshot,side,price,amount`` — a 10-level snapshot at t = 0, then level
  updates (amount 0 removes a level) every 100 ms;
- ``trades.csv``: ``exchange,symbol,timestamp,local_timestamp,id,side,price,amount``.

Timestamps are microseconds since the epoch (2024-01-01 00:00:00 UTC + t).
The path is a seeded random walk from 42,000.0 with a 0.1 tick: the same
seed always writes the same bytes (the tests compare).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

T0_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
SYMBOL = "BTCUSDT"
EXCHANGE = "binance-futures"
LEVELS = 10
TICK = 0.1


def _px(x: float) -> str:
    return f"{round(x / TICK) * TICK:.1f}"


def write(directory: Path, seed: int = 19, seconds: int = 30) -> list[Path]:
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    mid = 42_000.0
    book_rows = []
    ticker_rows = []
    trade_rows = []
    sizes = {}  # (side, price str) -> amount str

    def level(t_us, snap, side, price, amount):
        book_rows.append(f"{EXCHANGE},{SYMBOL},{t_us},{t_us + 1500},{'true' if snap else 'false'},{side},{price},{amount}")

    def ladder(m, old=None):
        """Levels 1.0 apart from m -+ 0.5; a level that was there keeps its size, but two change."""
        old = old or {}
        out = {}
        for i in range(LEVELS):
            for key in (("bid", _px(m - 0.5 - i * 1.0)), ("ask", _px(m + 0.5 + i * 1.0))):
                out[key] = old.get(key) or f"{rng.randint(1, 40) * 0.005:.3f}"
        for key in rng.sample(sorted(out), 2):
            out[key] = f"{rng.randint(1, 40) * 0.005:.3f}"
        return out

    sizes = ladder(mid)
    for (side, price), amount in sorted(sizes.items()):
        level(T0_US, True, side, price, amount)
    trade_id = 1
    for step in range(1, seconds * 10 + 1):
        t_us = T0_US + step * 100_000
        if step % 10 == 0:  # one ticker a second: index ~ mid, mark a hair above
            ticker_rows.append(
                f"{EXCHANGE},{SYMBOL},{t_us},{t_us + 1500},{T0_US + 8 * 3600 * 10**6},0.0001,0.0001,"
                f"12345.678,{_px(mid)},{_px(mid - 0.3)},{_px(mid + 0.2)}")
        mid += rng.choice((-1.0, 0.0, 0.0, 1.0))
        target = ladder(mid, sizes)
        for key in sorted(set(sizes) | set(target)):
            if key not in target:
                level(t_us, False, key[0], key[1], "0")
            elif sizes.get(key) != target[key]:
                level(t_us, False, key[0], key[1], target[key])
        sizes = target
        if step % 3 == 0:
            side = rng.choice(("buy", "sell"))
            price = _px(mid + (0.5 if side == "buy" else -0.5))
            trade_rows.append(f"{EXCHANGE},{SYMBOL},{t_us},{t_us + 1500},{trade_id},{side},{price},"
                              f"{rng.randint(1, 20) * 0.001:.3f}")
            trade_id += 1
    files = {
        "derivative_ticker.csv": "exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,"
                                 "predicted_funding_rate,open_interest,last_price,index_price,mark_price",
        "incremental_book_L2.csv": "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount",
        "trades.csv": "exchange,symbol,timestamp,local_timestamp,id,side,price,amount",
    }
    rows = {"derivative_ticker.csv": ticker_rows, "incremental_book_L2.csv": book_rows, "trades.csv": trade_rows}
    out = []
    for name, header in files.items():
        path = directory / name
        path.write_text(header + "\n" + "\n".join(rows[name]) + "\n", encoding="utf-8")
        out.append(path)
    return out


if __name__ == "__main__":
    from exchange_sim.replay_data import SAMPLE

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE
    for p in write(target):
        print(p)
