"""``exchange-sim stress``: scenarios through the real core, first-order sweep, executors, report, CLI errors.

Units (default config): BTC-PERP tick $0.1, lot 0.001 BTC, so 1 BTC = 1000
lots and $60,000 = 600,000 ticks; 1 USDT = 10^6 minor units. Fees are off
in the hand-built venues so wallets hold exactly what the docstrings say.
"""

from __future__ import annotations

import json

import msgspec
import numpy as np
import pytest

from exchange_sim import cli, journal, snapshot
from exchange_sim import config as config_mod
from exchange_sim.stress import executors, first_order, report, run, scenarios, state
from exchange_sim.venue import Venue
from protocol.messages import AccountUpdate, Deposit, Fill, NewOrder, QueryAccount, Rejected, Side

U = 10**6
HOUSE = 0
BTC_ASSETS = {"BTC", "ETH", "SOL", "BNB", "MEME", "USDC"}


def _cfg(insurance: str = "1000000"):
    cfg = config_mod.default()
    cfg = msgspec.structs.replace(cfg, instruments=[msgspec.structs.replace(i, maker_fee="0", taker_fee="0")
                                                    for i in cfg.instruments])
    return msgspec.structs.replace(cfg, liquidation=msgspec.structs.replace(cfg.liquidation,
                                                                            insurance_seed=insurance))


def _long_btc(v: Venue, account: int, usdt: int, lots: int) -> None:
    """Deposit ``usdt`` and buy ``lots`` BTC-PERP at $60,000 from the house."""
    assert not isinstance(v.apply(Deposit(account=account, asset="USDT", amount=usdt * U))[0], Rejected)
    ev = v.apply(NewOrder(account=HOUSE, symbol="BTC-PERP", side=Side.SELL, qty=lots, price=600_000, tif="post_only"))
    assert not isinstance(ev[0], Rejected), ev
    ev = v.apply(NewOrder(account=account, symbol="BTC-PERP", side=Side.BUY, qty=lots, price=600_000, tif="ioc"))
    assert sum(e.qty for e in ev if isinstance(e, Fill) and e.account == account) == lots


def hand_venue(insurance: str = "1000000") -> Venue:
    """Three longs against a house with $10^9:

    - account 1: $10,000 USDT, long 1 BTC   (6x)
    - account 2: $5,000 USDT,  long 0.5 BTC (6x)
    - account 3: $20,000 USDT, long 0.1 BTC (0.3x)
    """
    v = Venue(_cfg(insurance))
    v.apply(Deposit(account=HOUSE, asset="USDT", amount=10**9 * U))
    _long_btc(v, 1, 10_000, 1000)
    _long_btc(v, 2, 5_000, 500)
    _long_btc(v, 3, 20_000, 100)
    return v


def test_cover2_matches_the_hand_arithmetic():
    """BTC -50%: $60,000 -> $30,000. Loss beyond own collateral if each
    account defaulted with no liquidation help:

    - account 1: 1 BTC x $30,000 = $30,000 lost - $10,000 collateral = $20,000
    - account 2: 0.5 BTC x $30,000 = $15,000 - $5,000 = $10,000
    - account 3: 0.1 BTC x $30,000 = $3,000 < $20,000: nothing
    - the house is short and gains.

    Cover-1 = $20,000 (account 1); Cover-2 = $20,000 + $10,000 = $30,000.
    """
    prep = state.from_venue(hand_venue())
    sc = scenarios.number([scenarios.grid([("BTC", [-0.5])])])
    [res] = executors.run_serial(prep, sc)
    assert res.cover1 == 20_000.0
    assert res.cover2 == 30_000.0
    assert res.worst == [(1, 20_000.0), (2, 10_000.0)]
    # and the full cascade did liquidate the two (account 3 stays above MM)
    assert res.accounts_liquidated == [1, 2]


def test_a_scenario_that_exhausts_the_fund_shows_adl_in_the_report():
    """A $100 fund and no book depth: BTC -50% leaves account 1 at equity
    $10,000 - $30,000 = -$20,000; nobody bids, the fund cannot bear a
    $20,000 loss, so its position is auto-deleveraged against the
    profitable short, the house (account 0). BTC -5% liquidates nobody
    (account 1: $10,000 - $3,000 = $7,000 of equity against ~$285 of MM)."""
    prep = state.from_venue(hand_venue(insurance="100"))
    scs = scenarios.number([scenarios.grid([("BTC", [-0.5, -0.05])])])
    results = executors.run_serial(prep, scs)
    crash, mild = results
    assert crash.adl_count > 0 and HOUSE in crash.adl_accounts
    assert crash.fund_exhausted
    assert mild.liquidations == 0 and not mild.fund_exhausted
    rep = report.build(results, {"source": "hand"})
    ex = rep["fund"]["exhausting_scenarios"]
    assert [e["index"] for e in ex] == [0]
    assert ex[0]["adl_count"] == crash.adl_count and ex[0]["adl_accounts"] == crash.adl_accounts
    page = report.html(rep)
    assert "Scenarios that exhaust the insurance fund" in page and "BTC -50%" in page


def test_a_scenario_runs_on_a_copy_and_the_copy_is_exact():
    v = hand_venue()
    before = snapshot.state_hash(v)
    prep = state.from_venue(v)
    restored = snapshot.restore(prep.config, snapshot.decode(prep.state))
    assert snapshot.state_hash(restored) == before
    executors.run_serial(prep, scenarios.number([scenarios.grid([("BTC", [-0.5])])]))
    assert snapshot.state_hash(v) == before  # the original venue never moved


def _generated_prep():
    cfg = state.generated_config(insurance="5000")
    return state.from_venue(state.generated(48, 3, cfg, level_usd=20_000), makers=[state.MAKER])


def _fifty(prep):
    assets = state.assets_priced(prep)
    vols = prep.config.server.feed.volatility
    return scenarios.number([
        scenarios.grid(scenarios.parse_grid(["BTC=-0.4:0.4:0.2", "ETH=-0.4:0.4:0.2"], assets)),  # 25
        scenarios.historical(None, assets),  # 3
        scenarios.monte_carlo(22, ["BTC", "ETH", "SOL"], vols, 4, 3600, seed=11, vol_scale=4.0),
    ])


def test_fifty_scenarios_identical_on_one_process_local_processes_and_dask():
    pytest.importorskip("distributed")
    prep = _generated_prep()
    scs = _fifty(prep)
    assert len(scs) == 50
    one = executors.encode_results(executors.run_serial(prep, scs))
    procs = executors.encode_results(executors.run_processes(prep, scs, workers=2))
    dask = executors.encode_results(executors.run_dask(prep, scs, workers=2))
    assert one == procs == dask
    results = msgspec.msgpack.decode(one, type=list[run.ScenarioResult])
    assert [r.index for r in results] == list(range(50))
    # the run is not trivial: cascades, takeovers and ADL happened somewhere
    assert sum(r.liquidations for r in results) > 0
    assert any(r.takeovers for r in results) and any(r.adl_count for r in results)


def test_first_order_equity_and_mm_equal_the_venue_at_zero_shock():
    v = state.generated(30, 5)
    st = snapshot.capture(v)
    pop = first_order.from_state(v.config, st)
    equity, mm = first_order.figures(pop, pop.meta.base_e8)
    for r, a in enumerate(st.accounts):
        upd = v.apply(QueryAccount(account=a.id))[0]
        assert isinstance(upd, AccountUpdate)
        assert equity[r] == pytest.approx(upd.equity, rel=1e-12, abs=1e-6)
        if a.mode == "cross":
            assert mm[r] == pytest.approx(upd.mm, rel=1e-12, abs=1e-9)


def test_first_order_sweep_blocks_and_dask_agree_with_one_pass():
    cfg = config_mod.default()
    pop = first_order.synthetic(cfg, 5_000, seed=2)
    shocks = [{"BTC": m, "ETH": m} for m in (-0.5, -0.2, 0.0, 0.3)]
    whole = first_order.sweep(pop, shocks, block=10**6)
    blocks = first_order.sweep(pop, shocks, block=777)
    assert whole.below_mm == blocks.below_mm and whole.cover2 == pytest.approx(blocks.cover2)
    assert whole.below_mm[0] > whole.below_mm[1] > whole.below_mm[2] == 0
    # Cover-2 is the sum of the two largest losses, checked against a sort
    loss = first_order.losses(pop, pop.meta.index_after(shocks[0]))
    assert whole.cover2[0] == pytest.approx(float(np.sort(loss)[-2:].sum()))
    pytest.importorskip("dask")
    d1 = first_order.sweep_dask(cfg, 3_000, seed=4, shocks=shocks, block=1_000, scheduler="sync")
    d2 = first_order.sweep_dask(cfg, 3_000, seed=4, shocks=shocks, block=1_000, scheduler="threads")
    assert d1 == d2 and d1.below_mm[0] > 0


def test_monte_carlo_and_bootstrap_are_seeded():
    vols = {"BTC": 0.6, "ETH": 0.75}
    a = scenarios.monte_carlo(5, ["BTC", "ETH"], vols, 10, 3600, seed=9)
    b = scenarios.monte_carlo(5, ["BTC", "ETH"], vols, 10, 3600, seed=9)
    c = scenarios.monte_carlo(5, ["BTC", "ETH"], vols, 10, 3600, seed=10)
    assert a == b and a != c
    moves = np.array([[s["BTC"], s["ETH"]] for sc in scenarios.monte_carlo(400, ["BTC", "ETH"], vols, 1, 86_400, 1)
                      for s in sc.path])
    assert np.corrcoef(moves.T)[0, 1] == pytest.approx(0.8, abs=0.06)
    assert scenarios.bootstrap(3, 6, 1, {"BTC", "ETH"}) == scenarios.bootstrap(3, 6, 1, {"BTC", "ETH"})


def test_historical_moves_ship_and_are_labelled_approximate():
    moves = scenarios.historical_moves()
    assert set(moves) == {"2020-03-12", "2021-05-19", "2025-10-10"}
    low = {name: min(min(v) for v in m["moves"].values()) for name, m in moves.items()}
    assert -0.6 < low["2020-03-12"] <= -0.4 and low["2021-05-19"] <= -0.3
    from importlib import resources

    text = resources.files("exchange_sim.stress").joinpath("historical.toml").read_text(encoding="utf-8")
    assert "APPROXIMATE" in text


def test_grid_is_the_cross_product():
    axes = scenarios.parse_grid(["BTC=-0.5:0.5:0.25", "ETH=-0.2:0:0.1"], {"BTC", "ETH"})
    assert axes == [("BTC", [-0.5, -0.25, 0.0, 0.25, 0.5]), ("ETH", [-0.2, -0.1, 0.0])]
    assert len(scenarios.grid(axes)) == 15


# -------------------------------------------------------------------- CLI


def _cli(capsys, *argv):
    code = cli.main(["stress", "--no-progress", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_report_json_and_html(tmp_path, capsys):
    html = tmp_path / "r.html"
    code, out, err = _cli(capsys, "--accounts", "20", "--grid", "BTC=-0.3:0:0.3", "--workers", "1",
                          "--html", str(html))
    assert code == 0, err
    rep = json.loads(out)
    assert rep["scenarios_run"] == 2 and rep["run"]["accounts"] == 22  # 20 traders, the maker, the fund
    assert [s["name"] for s in rep["scenarios"]] == ["BTC -30%", "BTC +0%"]
    page = html.read_text(encoding="utf-8")
    assert "<svg" in page and "<script" not in page and "http" not in page.replace('lang="en"', "")
    assert "2 scenarios on 1 process" in err


def _scenario_file(tmp_path, text: str) -> str:
    p = tmp_path / "moves.toml"
    p.write_text(text, encoding="utf-8")
    return str(p)


@pytest.mark.parametrize("text, needle", [
    ('[[scenario]]\nname = "x"\nmoves = { XRP = -0.3 }\n', "unknown asset 'XRP'"),
    ('[[scenario]]\nname = "p"\npath = [{ BTC = -0.1 }, "oops"]\n', "scenario 'p' step 2: expected a table"),
    ('[[scenario]]\nname = "p"\npath = [{ BTC = -1.2 }]\n', "a move must be above -100%"),
    ('[[scenario]]\nname = "p"\npath = []\n', "path must be a non-empty list"),
    ('[[scenario]]\nname = "p"\nmoves = { BTC = -0.1 }\nshock = 1\n', "unknown key(s) ['shock']"),
    ('[[scenario]\n', "is not valid TOML"),
])
def test_cli_bad_scenario_file_is_a_clear_error(tmp_path, capsys, text, needle):
    code, out, err = _cli(capsys, "--accounts", "4", "--scenarios", _scenario_file(tmp_path, text))
    assert code == 2
    assert needle in err and "Traceback" not in err and out == ""


def _journaled(directory, snapshot_at: int | None) -> int:
    """A data dir of a hand venue's commands (journal), with a snapshot after
    command ``snapshot_at``. Returns the last seq."""
    j = journal.Journal(directory)
    v = Venue(_cfg())
    cmds = [Deposit(account=HOUSE, asset="USDT", amount=10**9 * U), Deposit(account=1, asset="USDT", amount=10**4 * U),
            NewOrder(account=HOUSE, symbol="BTC-PERP", side=Side.SELL, qty=1000, price=600_000, tif="post_only"),
            NewOrder(account=1, symbol="BTC-PERP", side=Side.BUY, qty=1000, price=600_000, tif="ioc")]
    for k, cmd in enumerate(cmds, 1):
        j.append(v.seq + 1, k, cmd)
        v.apply(cmd, k)
        if k == snapshot_at:
            journal.write_snapshot(directory, v.seq, snapshot.state_hash(v), snapshot.encode(snapshot.capture(v)))
    j.close()
    (directory / "config.toml").write_text(config_mod.default_text().replace(
        'maker_fee = "0.0002"', 'maker_fee = "0"').replace('taker_fee = "0.0005"', 'taker_fee = "0"'),
        encoding="utf-8")
    return v.seq


def test_cli_data_dir_without_snapshot_is_a_clear_error(tmp_path, capsys):
    _journaled(tmp_path, snapshot_at=None)
    code, _, err = _cli(capsys, "--data-dir", str(tmp_path), "--grid", "BTC=-0.5:-0.5:0.1")
    assert code == 2 and "holds no readable snapshot" in err and "--at SEQ" in err and "Traceback" not in err


def test_cli_at_beyond_the_journal_is_a_clear_error(tmp_path, capsys):
    last = _journaled(tmp_path, snapshot_at=2)
    code, _, err = _cli(capsys, "--data-dir", str(tmp_path), "--at", str(last + 5), "--grid", "BTC=-0.5:-0.5:0.1")
    assert code == 2 and f"beyond the journal" in err and f"last command is seq {last}" in err


def test_cli_data_dir_snapshot_and_at(tmp_path, capsys):
    """Newest snapshot (after command 2: account 1 has $10,000, no position):
    BTC -50% liquidates nobody. ``--at 4`` (after the trade): account 1 is
    long 1 BTC with $10,000, so BTC -50% liquidates it, Cover-1 $20,000."""
    _journaled(tmp_path, snapshot_at=2)
    code, out, err = _cli(capsys, "--data-dir", str(tmp_path), "--grid", "BTC=-0.5:-0.5:0.1", "--workers", "1")
    assert code == 0, err
    [sc] = json.loads(out)["scenarios"]
    assert sc["liquidations"] == 0 and sc["cover1"] == 0.0
    code, out, err = _cli(capsys, "--data-dir", str(tmp_path), "--at", "4", "--grid", "BTC=-0.5:-0.5:0.1",
                          "--workers", "1")
    assert code == 0, err
    [sc] = json.loads(out)["scenarios"]
    assert sc["accounts_liquidated"] == [1] and sc["cover1"] == 20_000.0


def test_cli_refuses_ambiguous_or_missing_input(capsys):
    code, _, err = _cli(capsys, "--grid", "BTC=-0.1:0:0.1")
    assert code == 2 and "give exactly one state" in err
    code, _, err = _cli(capsys, "--accounts", "4")
    assert code == 2 and "no scenarios" in err
    code, _, err = _cli(capsys, "--accounts", "4", "--grid", "DOGE=-0.1:0:0.1")
    assert code == 2 and "unknown asset 'DOGE'" in err
    code, _, err = _cli(capsys, "--accounts", "4", "--historical", "1929-10-29")
    assert code == 2 and "unknown historical move '1929-10-29'" in err


def test_cli_refuses_a_maker_that_is_not_an_account(capsys):
    code, _, err = _cli(capsys, "--accounts", "4", "--grid", "BTC=-0.1:0:0.1", "--maker", "777")
    assert code == 2 and "--maker 777: no such account" in err


def test_progress_line_shows_done_rate_and_eta():
    import io

    from exchange_sim.stress.command import ProgressBar

    out = io.StringIO()
    bar = ProgressBar(out, live=True)
    bar(1, 4)
    bar(4, 4)  # the last one always draws, and ends the line
    text = out.getvalue()
    assert "1/4 scenarios" in text and "4/4 scenarios" in text and "/s" in text and "ETA" in text
    assert text.endswith("\n")
    quiet = io.StringIO()
    ProgressBar(quiet, live=False)(4, 4)
    assert quiet.getvalue() == ""


def test_cli_venue_file_the_articles_account(tmp_path, capsys):
    """The article's account (explain's built-in scenario): $10,000 of BTC
    and $5,000 of ETH (5% haircut each: $14,250 counted), long 250 SOL at
    $200, short BNB. SOL -50%: the long loses $25,000, so the account would
    leave $25,000 - $14,250 = $10,750 unpaid: Cover-1. The cascade
    liquidates it and sells its BTC and ETH to repay the USDT debt."""
    from exchange_sim import scenario

    path = tmp_path / "article.toml"
    path.write_text(scenario.builtin_article(), encoding="utf-8")
    code, out, err = _cli(capsys, "--venue-file", str(path), "--grid", "SOL=-0.5:-0.5:0.1", "--workers", "1")
    assert code == 0, err
    [sc] = json.loads(out)["scenarios"]
    assert sc["accounts_liquidated"] == [1] and sc["cover1"] == 10_750.0
    assert sc["conversions"] > 0


def test_cli_same_seed_same_report_on_every_executor(capsys):
    pytest.importorskip("distributed")
    argv = ["--accounts", "16", "--insurance", "2000", "--depth", "20000", "--monte-carlo", "6", "--steps", "3",
            "--vol-scale", "6", "--seed", "5"]
    reports = []
    for how in (["--workers", "1"], ["--workers", "2"], ["--dask", "local", "--workers", "2"]):
        code, out, err = _cli(capsys, *argv, *how)
        assert code == 0, err
        reports.append(out)
    assert reports[0] == reports[1] == reports[2]
    assert json.loads(reports[0])["scenarios_run"] == 6
    code, other, _ = _cli(capsys, *argv[:-1], "6", "--workers", "1")
    assert code == 0 and other != reports[0]  # another seed, other paths
