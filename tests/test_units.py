"""The tests' units table (``units.py``) is the embedded default config's: if
a shipped tick, lot, unit or start price changes, this names it, instead of
hand arithmetic failing somewhere far away."""

from decimal import Decimal

import units
from exchange_sim import Venue
from exchange_sim import config as config_mod


def test_the_units_table_is_the_default_config():
    venue = Venue(config_mod.default())
    assert venue.assets["USDT"].unit == venue.assets["USDC"].unit == units.U
    for asset in ("BTC", "ETH", "SOL", "BNB", "MEME"):
        assert venue.assets[asset].unit == units.COIN, asset
    assert set(venue.instruments) == set(units.SYMBOLS)
    for sym in units.SYMBOLS:
        ins = venue.instruments[sym]
        assert Decimal(ins.tick_size) * units.TICKS_PER_USD[sym] == 1, sym
        assert Decimal(ins.lot_size) == units.LOT[sym], sym
        assert ins.mark == units.MARK[sym], sym
        assert ins.tick_e8 == units.TICK_E8[sym], sym
        assert ins.value == units.U_PER_TICK_LOT[sym], sym
        assert ins.underlying == units.UNDERLYING[sym], sym
