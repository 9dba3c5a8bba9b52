"""The units of the embedded default config: the one table every test helper
(``venue_helpers``, ``risk_helpers``, ``liq_helpers``) and test takes its
constants from, so a docstring or an assertion can show arithmetic by hand.
``test_units.py`` checks the table against the config.

=========  ===========  ========  ==================  =================
symbol     tick (USD)   lot       µUSDT per tick×lot  mark at start
=========  ===========  ========  ==================  =================
BTC-PERP   0.1          0.001     100                 600_000 ($60,000)
ETH-PERP   0.01         0.001     10                  300_000 ($3,000)
SOL-PERP   0.001        0.1       100                 150_000 ($150)
BNB-PERP   0.01         0.01      100                 60_000 ($600)
MEME-PERP  0.00001      1         10                  25_000 ($0.25)
=========  ===========  ========  ==================  =================

Prices are in ticks, quantities in lots, balances in minor units (µUSDT for
USDT and USDC: :data:`U`; 1e-8 for the coins: :data:`COIN`), index prices in
1e-8 USD (``protocol.messages.PRICE_SCALE``).
"""

from __future__ import annotations

from decimal import Decimal

U = 10**6  # µUSDT per USDT (and µUSDC per USDC)
COIN = 10**8  # minor units per BTC / ETH / SOL / BNB / MEME

BTC, ETH, SOL, BNB, MEME = "BTC-PERP", "ETH-PERP", "SOL-PERP", "BNB-PERP", "MEME-PERP"
SYMBOLS = (BTC, ETH, SOL, BNB, MEME)
UNDERLYING = {BTC: "BTC", ETH: "ETH", SOL: "SOL", BNB: "BNB", MEME: "MEME"}

#: ticks per USD, per symbol (one tick = 1 / this USD)
TICKS_PER_USD = {BTC: 10, ETH: 100, SOL: 1000, BNB: 100, MEME: 100_000}
#: one lot, in units of the underlying
LOT = {BTC: Decimal("0.001"), ETH: Decimal("0.001"), SOL: Decimal("0.1"), BNB: Decimal("0.01"), MEME: Decimal(1)}
#: mark at start, in ticks (the default index prices)
MARK = {BTC: 600_000, ETH: 300_000, SOL: 150_000, BNB: 60_000, MEME: 25_000}
BTC_MARK = MARK[BTC]
ETH_MARK = MARK[ETH]
#: one tick in 1e-8 USD (the index-price scale)
TICK_E8 = {s: 10**8 // TICKS_PER_USD[s] for s in SYMBOLS}
#: µUSDT of value in one tick × one lot (the table's fourth column)
U_PER_TICK_LOT = {s: int(LOT[s] * U / TICKS_PER_USD[s]) for s in SYMBOLS}
