"""Scenario files (``exchange-sim explain FILE``): numbers as TOML strings,
integers or floats; every asset held or traded needs its price; errors name
the asset, the field and the valid values."""

from __future__ import annotations

import pytest

from exchange_sim import config as config_mod
from exchange_sim import scenario
from exchange_sim.cli import main
from protocol.messages import PRICE_SCALE


def build(tmp_path, text):
    path = tmp_path / "sc.toml"
    path.write_text(text)
    return scenario.build(config_mod.default(), scenario.load(path))


ARTICLE_AS_NUMBERS = """mode = "cross"
[prices]
BTC = 50000
ETH = 2500.0
SOL = "200"
BNB = 500
[holdings]
BTC = 0.2
ETH = 2
[[positions]]
symbol = "SOL-PERP"
qty = 250
[[positions]]
symbol = "BNB-PERP"
qty = -50.0
"""


def test_numbers_as_ints_floats_and_strings_give_the_articles_account(tmp_path):
    """The article's file written with TOML numbers builds the same account
    as the shipped one written with strings (same explain, figure for figure)."""
    v = build(tmp_path, ARTICLE_AS_NUMBERS)
    ref = scenario.build(config_mod.default(), scenario.load(None))
    assert v.explain(scenario.ACCOUNT) == ref.explain(scenario.ACCOUNT)
    assert v.assets["ETH"].index == 2500 * PRICE_SCALE
    assert v.accounts[scenario.ACCOUNT].balances["BTC"] == 20_000_000  # 0.2 BTC exactly, not 0.2000000000000000111


def test_a_float_price_is_read_through_its_shortest_text(tmp_path):
    """0.1 as a TOML float is 0.1 USD exactly (10,000,000 index units), not
    the binary double's 0.1000000000000000055511151231257827."""
    v = build(tmp_path, '[prices]\nMEME = 0.1\nBTC = 60000.5\n[holdings]\nMEME = 1000\nBTC = 0.00000001\n')
    assert v.assets["MEME"].index == 10_000_000 and v.assets["BTC"].index == 6_000_050_000_000
    assert v.accounts[scenario.ACCOUNT].balances["BTC"] == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ('[holdings]\nBTC = "0.2"\n',
         'bad scenario file: no price for BTC, which the account holds or trades: give it under [prices], '
         'e.g. BTC = "100"'),
        ('[prices]\nBTC = 50000\n[holdings]\nUSDT = 1000\n[[positions]]\nsymbol = "SOL-PERP"\nqty = 10\n',
         'bad scenario file: no price for SOL, which the account holds or trades: give it under [prices], '
         'e.g. SOL = "100"'),
        ('[prices]\nBTC = true\n', "bad scenario file: [prices] BTC = True is not a number"),
        ('[prices]\nBTC = "abc"\n', "bad scenario file: [prices] BTC = 'abc' is not a decimal number"),
        ('[prices]\nBTC = nan\n', "bad scenario file: [prices] BTC = nan is not a decimal number"),
        ('[holdings]\nETH = inf\n', "bad scenario file: [holdings] ETH = inf is not a decimal number"),
        ('[prices]\nBTC = 50000\n[holdings]\nBTC = "0.123456789"\n',
         "bad scenario file: [holdings] BTC = '0.123456789' has more decimals than BTC has (8)"),
        ('[[positions]]\nsymbol = "SOL-PERP"\nqty = "ten"\n',
         "bad scenario file: SOL-PERP qty = 'ten' is not a decimal number"),
        ('mode = "crossed"\n',
         "bad scenario file: mode: 'crossed' is not a valid margin mode; valid: isolated, cross, portfolio"),
    ],
)
def test_scenario_errors_name_the_asset_and_the_value(tmp_path, capsys, text, message):
    path = tmp_path / "sc.toml"
    path.write_text(text)
    assert main(["explain", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"exchange-sim: {message}\n"


def test_the_settlement_asset_needs_no_price(tmp_path):
    v = build(tmp_path, '[holdings]\nUSDT = 1000\n')
    assert v.explain(scenario.ACCOUNT).collateral == 1000
