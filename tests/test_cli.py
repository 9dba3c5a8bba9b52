"""The ``exchange-sim`` command line: the default session prints figures
that agree with the venue's own state, and ``schema`` prints the JSON Schema.

The session is deterministic, so the test replays it with
:func:`exchange_sim.session.run_session` to get the venue it printed from,
and checks every printed figure against that venue rather than against
numbers copied from a previous run.
"""

from __future__ import annotations

import io
import json
import re

import pytest

from exchange_sim import config as config_mod
from exchange_sim.cli import main
from exchange_sim.session import MAKER, TRADER, run_session
from protocol.messages import AccountUpdate, BookSnapshot, QueryAccount, QueryBook
from protocol.schema import json_schema

SYM = "BTC-PERP"
NUM = r"-?[\d,]+(?:\.\d+)?"


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _session_venue(cfg=None):
    return run_session(cfg or config_mod.default(), out=io.StringIO())


def check_session_output(out: str, venue) -> None:
    """Every figure of the printed session, checked against ``venue``."""
    ins = venue.instruments[SYM]
    tick, lot = float(ins.tick_size), float(ins.lot_size)
    unit = venue.settle.unit
    (acct,) = venue.apply(QueryAccount(account=TRADER))
    assert isinstance(acct, AccountUpdate)

    # header: instrument count and mark
    header = re.search(rf"session: (\d+) instruments, mark {SYM} ({NUM}) USDT", out)
    assert header, out
    assert int(header.group(1)) == len(venue.instruments)
    assert _num(header.group(2)) == pytest.approx(ins.mark * tick)

    # fills: their lots make the position, their fees are the USDT debt
    fills = re.findall(rf"fill\s+({NUM}) @ ({NUM})\s+fee ({NUM}) USDT\s+\((taker|maker)\)", out)
    assert fills, out
    (pos,) = acct.positions
    assert sum(_num(q) for q, _, _, _ in fills) == pytest.approx(pos.qty * lot)
    assert sum(_num(f) for _, _, f, _ in fills) == pytest.approx(-acct.balances["USDT"] / unit, abs=1e-4 * len(fills))
    avg = sum(_num(q) * _num(p) for q, p, _, _ in fills) / sum(_num(q) for q, _, _, _ in fills)
    assert avg == pytest.approx(pos.entry_price * tick)

    # the book: sequence number and the top five levels each side
    (snap,) = venue.apply(QueryBook(symbol=SYM, depth=5))
    assert isinstance(snap, BookSnapshot)
    seq = re.search(rf"{SYM} book \(seq (\d+)\)", out)
    assert seq and int(seq.group(1)) == ins.book_seq == snap.seq
    asks = [(_num(p), _num(q)) for p, q in re.findall(rf"ask\s+({NUM})\s+({NUM})", out)]
    bids = [(_num(p), _num(q)) for p, q in re.findall(rf"bid\s+({NUM})\s+({NUM})", out)]
    assert asks == [pytest.approx((p * tick, q * lot)) for p, q in reversed(snap.asks)]
    assert bids == [pytest.approx((p * tick, q * lot)) for p, q in snap.bids]

    # the trader's account
    assert f"trader account {TRADER} ({acct.margin_mode} margin)" in out
    for asset, bal in acct.balances.items():
        line = re.search(rf"^\s+{asset}\s+({NUM})$", out, re.M)
        assert line, f"no {asset} line in\n{out}"
        assert _num(line.group(1)) == pytest.approx(bal / venue.assets[asset].unit)
    line = re.search(rf"{SYM} ({NUM}) @ ({NUM})\s+uPnL ({NUM}) USDT", out)
    assert line
    assert _num(line.group(1)) == pytest.approx(pos.qty * lot)
    assert _num(line.group(2)) == pytest.approx(pos.entry_price * tick, abs=0.01)
    assert _num(line.group(3)) == pytest.approx(pos.upnl / unit, abs=0.01)
    figures = re.search(
        rf"collateral after haircuts ({NUM})\s+equity ({NUM})\s+IM ({NUM})\s+MM ({NUM})\s+margin ratio ({NUM})%", out
    )
    assert figures, out
    collateral, equity, im, mm, ratio = (_num(x) for x in figures.groups())
    assert (collateral, equity, im, mm) == (
        pytest.approx(acct.collateral, abs=0.01),
        pytest.approx(acct.equity, abs=0.01),
        pytest.approx(acct.im, abs=0.01),
        pytest.approx(acct.mm, abs=0.01),
    )
    assert ratio == pytest.approx(acct.margin_ratio * 100, abs=0.1)


def test_default_command_prints_the_session(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    venue = _session_venue()
    check_session_output(out, venue)
    # the story it tells holds: the trader never held USDT and now owes fees
    assert venue.accounts[TRADER].balances["USDT"] < 0
    assert set(venue.accounts[MAKER].balances) == {"USDT"}


def test_run_is_the_default_command(capsys):
    main([])
    default_out = capsys.readouterr().out
    assert main(["run"]) == 0
    assert capsys.readouterr().out == default_out


def test_run_with_another_config_prints_its_figures(tmp_path, capsys):
    """Taker fee 0.1 % instead of 0.05 %: the fees printed double, and still
    match the venue built from the same file."""
    text = config_mod.default_text().replace('taker_fee = "0.0005"', 'taker_fee = "0.001"')
    path = tmp_path / "venue.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["run", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    venue = _session_venue(config_mod.load(path))
    check_session_output(out, venue)
    assert "fee 30.0005 USDT" in out  # 0.5 BTC × 60,001 × 0.1 %


@pytest.mark.parametrize("content", [None, "not toml [[[", '[venue]\nsettlement_asset = "USDT"\nbogus = 1\n'])
def test_a_bad_config_is_an_error_not_a_traceback(tmp_path, capsys, content):
    path = tmp_path / "bad.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["run", "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("exchange-sim: ")
    assert captured.out == ""


def test_schema_prints_valid_json(capsys):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(json_schema()))
    assert "NewOrder" in printed["$defs"] and "Fill" in printed["$defs"]


@pytest.mark.parametrize("argv, command", [(["serve", "--port", "7005"], "serve"), (["replay", "d", "--bogus"], "replay"),
                                           (["demo", "--slow"], "demo")])
def test_an_unknown_flag_shows_the_commands_own_usage(capsys, argv, command):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: exchange-sim {command} [-h]")
    assert f"exchange-sim {command}: error: unrecognized arguments: {' '.join(argv[-1:] if command != 'serve' else argv[1:])}" in err
    assert "{run,demo" not in err  # not the top-level usage


def test_an_unknown_flag_without_a_command_shows_the_top_level_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--bogus"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: exchange-sim [-h]") and "unrecognized arguments: --bogus" in err


def test_serve_refuses_an_index_feed_beside_a_replay(capsys):
    """A wall-clock index feed would write wall-clock moves into a replay's
    data-time journal: refused before anything binds, naming both."""
    from pathlib import Path

    import exchange_sim

    sample = Path(exchange_sim.__file__).parent / "replay_data" / "sample"
    assert main(["serve", "--replay", str(sample), "--feed", "random-walk", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("exchange-sim: ") and "--replay and an index feed (random_walk" in err
