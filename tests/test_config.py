"""Config files: partial files merged onto the embedded default, readable
errors (naming the key, its table and the valid choices), and
``exchange-sim config`` printing TOML that reads back to the same config."""

from __future__ import annotations

import tomllib

import msgspec
import pytest

from exchange_sim import config as config_mod
from exchange_sim.cli import main


def run_cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_the_issues_partial_file_is_a_whole_config():
    """Only [risk] warning_ratio: everything else is the default's."""
    cfg = config_mod.loads("[risk]\nwarning_ratio = 2.0\n")
    default = config_mod.default()
    assert cfg.risk.warning_ratio == 2.0 and default.risk.warning_ratio == 1.5
    assert cfg == msgspec.structs.replace(default, risk=msgspec.structs.replace(default.risk, warning_ratio=2.0))


def test_an_empty_file_is_the_default():
    assert config_mod.loads("") == config_mod.default()


def test_one_instruments_field_is_overridden_the_rest_kept():
    cfg = config_mod.loads('[[instruments]]\nsymbol = "SOL-PERP"\ntaker_fee = "0.001"\n')
    default = config_mod.default()
    by = {i.symbol: i for i in cfg.instruments}
    old = {i.symbol: i for i in default.instruments}
    assert [i.symbol for i in cfg.instruments] == [i.symbol for i in default.instruments]
    assert by["SOL-PERP"] == msgspec.structs.replace(old["SOL-PERP"], taker_fee="0.001")
    assert all(by[s] == old[s] for s in by if s != "SOL-PERP")


def test_a_new_asset_and_instrument_are_added_after_the_defaults():
    text = ('[[assets]]\nname = "DOGE"\ndecimals = 8\nindex_price = "0.1"\n'
            '[[instruments]]\nsymbol = "DOGE-PERP"\nunderlying = "DOGE"\ntick_size = "0.00001"\n'
            'lot_size = "1"\nmax_qty = 1000000\nmargin_tiers = [[inf, 0.05, 0.025]]\n')
    cfg = config_mod.loads(text)
    assert [a.name for a in cfg.assets][-1] == "DOGE" and len(cfg.assets) == len(config_mod.default().assets) + 1
    assert cfg.assets[-1].index_price == "0.1" and cfg.instruments[-1].symbol == "DOGE-PERP"
    from exchange_sim.venue import Venue

    assert "DOGE-PERP" in Venue(cfg).instruments


def test_a_new_entry_must_be_complete():
    with pytest.raises(ValueError) as exc:
        config_mod.loads('[[assets]]\nname = "DOGE"\n')
    assert str(exc.value) == "config: Object missing required field `decimals` - at assets[DOGE]"


def test_remove_drops_a_default_entry():
    cfg = config_mod.loads('[[instruments]]\nsymbol = "MEME-PERP"\nremove = true\n')
    assert "MEME-PERP" not in [i.symbol for i in cfg.instruments]
    assert len(cfg.instruments) == len(config_mod.default().instruments) - 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("[risk]\ncolour = 1\n", "config: Object contains unknown field `colour` - at risk"),
        ("[server.feed]\nspeeed = 2.0\n", "config: Object contains unknown field `speeed` - at server.feed"),
        ('[[instruments]]\nsymbol = "SOL-PERP"\nlot = "1"\n',
         "config: Object contains unknown field `lot` - at instruments[SOL-PERP]"),
        ("colour = 1\n", "config: Object contains unknown field `colour` - at the top level"),
        ('[venue]\nmax_open_orders = "many"\n', "config: Expected `int`, got `str` - at venue.max_open_orders"),
        ('[[instruments]]\nsymbol = "SOL-PERP"\ntick_size = 0.001\n',
         "config: Expected `str`, got `float` - at instruments[SOL-PERP].tick_size"),
        ("[risk]\nwarning_ratio = 0.5\n", "config: Expected `float` >= 1.0 - at risk.warning_ratio"),
        ('[risk]\ndefault_mode = "crossed"\n',
         "risk.default_mode: 'crossed' is not a valid margin mode; valid: isolated, cross, portfolio"),
        ('[risk]\nprofile = "wild"\n',
         "risk.profile: 'wild' is not a valid profile (a key of risk.profiles); valid: default, stress"),
        ('[journal]\npolicy = "sometimes"\n',
         "journal.policy: 'sometimes' is not a valid journal policy; valid: group, fsync"),
        ('[server.feed]\nkind = "random-walk"\n',
         "config: server.feed.kind: 'random-walk' is not a valid feed kind; valid: none, random_walk, csv"
         " - at server"),
        ('[[instruments]]\nsymbol = "BTC-PERP"\n[[instruments]]\nsymbol = "BTC-PERP"\n',
         "config: [[instruments]] symbol = 'BTC-PERP' is given twice"),
        ('[[instruments]]\nsymbol = "DOGE-PERP"\nremove = true\n',
         "config: [[instruments]] symbol = 'DOGE-PERP': no such entry to remove"),
        ('[[instruments]]\nsymbol = "BTC-PERP"\nremove = true\nmax_qty = 5\n',
         "config: [[instruments]] symbol = 'BTC-PERP': remove = true goes alone with the symbol"),
        ('[[instruments]]\ntick_size = "1"\n', "config: every [[instruments]] entry needs its symbol"),
        ('[venue]\nsettlement_asset = "USD"\n',
         "venue.settlement_asset 'USD' is not an asset; valid: USDT, USDC, BTC, ETH, SOL, BNB, MEME"),
        ("[risk\n", None),
    ],
)
def test_bad_config_errors_name_the_key_and_the_valid_values(text, message):
    with pytest.raises(ValueError) as exc:
        config_mod.loads(text)
    if message is None:
        assert str(exc.value).startswith("config is not valid TOML: ")
    else:
        assert str(exc.value) == message


def test_bad_config_on_the_command_line_exits_2_with_the_message(capsys, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[risk]\ndefault_mode = "crossed"\n')
    rc, out, err = run_cli(capsys, "config", "--config", str(path))
    assert rc == 2 and out == ""
    assert err == ("exchange-sim: risk.default_mode: 'crossed' is not a valid margin mode; "
                   "valid: isolated, cross, portfolio\n")


def test_config_command_prints_the_default_as_toml_that_reads_back_equal(capsys):
    rc, out, _ = run_cli(capsys, "config")
    assert rc == 0 and out.startswith("# exchange-sim effective configuration: the embedded default.")
    assert config_mod.loads(out) == config_mod.default()
    # complete on its own, not only once merged: every default key is written
    assert config_mod.from_raw(tomllib.loads(out)) == config_mod.default()


MERGED = ('[risk]\nwarning_ratio = 2.0\n'
          '[risk.profiles.mine]\ncorrelation = 0.5\nscan_ranges = { BTC = 0.2 }\n'
          '[[instruments]]\nsymbol = "SOL-PERP"\ntaker_fee = "0.001"\n'
          '[[instruments]]\nsymbol = "MEME-PERP"\nremove = true\n'
          '[[assets]]\nname = "DOGE"\ndecimals = 8\n'
          '[[server.accounts]]\naccount = 9\napi_key = "key \\"with\\" quotes\\ttab"\nname = "ünï"\n'
          '[server.feed]\nvolatility = { BTC = 0.1 }\ncsv_path = "C:\\\\prices.csv"\n')


def test_config_command_prints_a_merged_file_that_reads_back_equal(capsys, tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(MERGED)
    cfg = config_mod.load(path)
    assert cfg.risk.profiles["mine"].correlation == 0.5 and cfg.server.accounts[-1].api_key == 'key "with" quotes\ttab'
    assert cfg.server.feed.volatility["BTC"] == 0.1 and cfg.server.feed.volatility["ETH"] == 0.75  # key by key
    rc, out, _ = run_cli(capsys, "config", "--config", str(path))
    assert rc == 0 and f"merged with {path}" in out
    assert 'symbol = "MEME-PERP"\nremove = true' in out
    assert config_mod.loads(out) == cfg
    again = tmp_path / "again.toml"
    again.write_text(out)
    rc, out2, _ = run_cli(capsys, "config", "--config", str(again))
    assert rc == 0 and out2.split("\n", 2)[2] == out.split("\n", 2)[2]  # same text past the header


def test_config_help_states_the_merge_rules(capsys):
    with pytest.raises(SystemExit):
        main(["config", "--help"])
    out = capsys.readouterr().out
    assert "merge by name" in out and "remove = true" in out and "Unknown keys are refused" in out


def test_removing_an_asset_drops_the_defaults_mentions_of_it():
    """MEME out: its instrument goes by the file, the stress profile's scan
    range and the feed's volatility for it by the removal itself."""
    cfg = config_mod.loads('[[assets]]\nname = "MEME"\nremove = true\n[[instruments]]\nsymbol = "MEME-PERP"\nremove = true\n')
    assert "MEME" not in [a.name for a in cfg.assets]
    assert "MEME" not in cfg.risk.profiles["stress"].scan_ranges and "MEME" not in cfg.server.feed.volatility
    assert cfg.risk.profiles["stress"].scan_ranges["BTC"] == 0.08
    assert config_mod.loads(config_mod.dumps(cfg)) == cfg
    with pytest.raises(ValueError) as exc:  # the instrument still names it
        config_mod.loads('[[assets]]\nname = "MEME"\nremove = true\n')
    assert str(exc.value) == "MEME-PERP: underlying 'MEME' is not an asset; valid: USDT, USDC, BTC, ETH, SOL, BNB"
    with pytest.raises(ValueError) as exc:  # the file's own mention is refused as before
        config_mod.loads('[[assets]]\nname = "MEME"\nremove = true\n[[instruments]]\nsymbol = "MEME-PERP"\n'
                         'remove = true\n[risk.profiles.stress]\nscan_ranges = { MEME = 0.2 }\n')
    assert str(exc.value) == "risk.profiles.stress: unknown underlyings ['MEME']; valid: USDT, USDC, BTC, ETH, SOL, BNB"
