"""`exchange-sim demo --fast`: the narrated story's figures are the venue's own,
and match the hand arithmetic of the source article's numbers; every
liquidation the venue reports is narrated; with ``--data-dir`` the run is
journaled and replays to the same liquidation events; Ctrl-C ends it cleanly."""

import io
import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal

import msgspec
import pytest

from exchange_sim import demo, journal, replay
from exchange_sim.cli import main
from exchange_sim.narration import LIQUIDATION_EVENTS
from protocol import messages as m
from protocol.units import ratio_text


@pytest.fixture(scope="module")
def told(tmp_path_factory):
    """One fast demo run, journaled: (figures, text, data dir)."""
    data = tmp_path_factory.mktemp("demo") / "run1"
    out = io.StringIO()
    figures = demo.run(fast=True, out=out, web_hint=False, default_ports=False, data_dir=data)
    return figures, out.getvalue(), data


def test_demo_tells_the_story_with_the_venues_figures(told):
    figures, text, _ = told

    # warm-up: house liquidity quoted and traded, told in words, not reprs
    house = re.search(r"house liquidity: (\d+) orders and cancels, (\d+) trades; the maker is now "
                      r"(flat|long|short)", text)
    assert house, text[:1500]
    assert int(house.group(1)) > 0 and int(house.group(2)) > 0
    assert "Stats(" not in text and "Counter(" not in text and "Decimal(" not in text

    # 1-2. $10,000 of BTC and $5,000 of ETH after 5% haircuts = $14,250, less the
    # $37.50 of taker fees (0.05% of $75,000) owed in USDT: $14,212.50 of collateral
    ex = figures["story"]
    assert round(ex.collateral, 2) == 14_212.50
    assert "14,212.50" in text
    # cross: 2% IM of $50,000 SOL + $25,000 BNB = $1,500, 1% MM = $750
    assert (round(ex.im, 2), round(ex.mm, 2)) == (1_500.00, 750.00)
    # 3. portfolio: worst "SOL -": 1% x 50,000 - 0.7 x 1% x 25,000 = 325; IM x2 = 650
    rows = {r.mode.value: r for r in ex.compare}
    assert (round(rows["portfolio"].mm, 2), round(rows["portfolio"].im, 2)) == (325.00, 650.00)
    assert rows["isolated"].usable_collateral == 0.0
    assert "needs IM $   650.00" in text
    # the ratio in the one format: equity / MM = 14,212.50 / 325 = 4,373.1%
    assert f"ratio {ratio_text(rows['portfolio'].margin_ratio)}" in text and "ratio 4,373.1%" in text

    # 4. hedge: ETH long $100k alone 0.5% = $500; with a $60k BTC short the worst
    # scenario "ETH -" loses 500 - 0.7 x 0.5% x 60,000 = $290; cross would ask $800
    assert figures["hedge"] == (500.0, 290.0, 800.0)
    assert "MM $290.00 (cross would ask $800.00)" in text

    # 5. one SOL crash liquidates positions in all five books, worst impact first
    cascade = figures["cascade"]
    assert set(cascade) == {"BTC-PERP", "ETH-PERP", "SOL-PERP", "BNB-PERP", "MEME-PERP"}
    assert "closed positions in 5 books" in text
    # $10,000 behind $115,000: 10,000 / (MM of the five) in the one format, not "1136%"
    assert re.search(r"five perpetuals \(margin ratio 1,1\d\d\.\d%\)", text)

    # 6. the stablecoin buffer survives what liquidates the MEME-backed account
    assert demo.BUFFER_MEME in figures["buffer_liquidated"]
    assert demo.BUFFER_USDT not in figures["buffer_liquidated"]
    assert "(USDT collateral): survives" in text and "(MEME collateral): LIQUIDATED" in text

    # no ratio in another format anywhere in the story's own lines
    assert not re.search(r"ratio (now )?\d+\.\d{3}\b", text) and "ratio inf" not in text


def _instrument(symbol: str):
    return next(i for i in demo.config_mod.default().instruments if i.symbol == symbol)


def _price(symbol: str, ticks: int) -> str:
    return f"{Decimal(ticks) * Decimal(_instrument(symbol).tick_size):,f} USDT"


def _qty(symbol: str, lots: int) -> str:
    return f"{Decimal(lots) * Decimal(_instrument(symbol).lot_size):,f} {symbol}"


def test_every_liquidation_is_narrated_in_human_units(told):
    figures, text, _ = told
    evs = figures["liquidations"]
    started = [e for e in evs if isinstance(e, m.LiquidationStarted)]
    slices = [e for e in evs if isinstance(e, m.LiquidationSlice)]
    takeovers = [e for e in evs if isinstance(e, m.InsuranceTakeover)]
    finished = [e for e in evs if isinstance(e, m.LiquidationFinished)]
    # chapter 5's cascade, then account 103 twice more in chapter 6 (with insurance takeovers), and 105
    assert [e.account for e in started] == [demo.POOLED, demo.POOLED, demo.POOLED, demo.BUFFER_MEME]
    assert takeovers and {t.account for t in takeovers} == {demo.POOLED}
    assert text.count("liquidation of account 103 starts") == 3 == text.count("liquidation of account 103 finished")
    for e in started:
        assert f"liquidation of account {e.account} starts: ratio {ratio_text(e.margin_ratio)}" in text
    for e in finished:
        told_ratio = "no positions left" if e.margin_ratio is None else f"ratio {ratio_text(e.margin_ratio)}"
        assert f"liquidation of account {e.account} finished: {told_ratio}" in text
    # one numbered line per slice, with the bound in USDT and the ratio before -> after
    slice_lines = re.findall(r"^\s+\d+\. account (\d+) sells .*bound ([\d,.]+ USDT).*ratio (\S+) -> (.+)$", text, re.M)
    assert len(slice_lines) == len(slices)
    for line, e in zip(slice_lines, slices):
        assert int(line[0]) == e.account
        assert line[1] == _price(e.symbol, e.bankruptcy_price)
        assert line[3] == ratio_text(e.margin_ratio_after)
    assert "bound 49,215.0 USDT" in text  # the first slice: BTC-PERP's bankruptcy price, 492,150 ticks of 0.1
    # the ratio before a slice is the one after the previous (or where the liquidation started)
    assert slice_lines[0][2] == ratio_text(started[0].margin_ratio)
    assert slice_lines[1][2] == ratio_text(slices[0].margin_ratio_after)
    for t in takeovers:
        assert f"takes over {_qty(t.symbol, t.qty)} at {_price(t.symbol, t.price)}, the bankruptcy price" in text
    assert text.count("the insurance fund (account") == len(takeovers)
    conv = [e for e in evs if isinstance(e, m.CollateralConversion)]
    assert conv and f"account {conv[0].account} sells" in text and "to the insurance fund at $0.147" in text


def test_the_journaled_demo_replays_to_the_same_liquidations(told, capsys):
    figures, text, data = told
    # the closing tip names the dir and both ways to replay it
    assert f"exchange-sim replay {data} --print" in text and f"exchange-sim web --data-dir {data}" in text
    assert journal.snapshots(data), "the demo's venue snapshots at the end, as serve does"
    # the newest snapshot is the journal's end: replay says so and starts from the start
    assert main(["replay", str(data)]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("replaying from the start of the journal (seq 1): the newest snapshot (seq ")
    assert "is the end of the journal" in first
    seq = journal.load_snapshot(journal.snapshots(data)[-1]).seq
    assert f"replayed {seq} commands; venue at seq {seq}" in out  # the whole run, not "nothing to replay"
    replayed = [e for _, evs, _ in replay.replay(data) for e in evs if isinstance(e, LIQUIDATION_EVENTS)]
    assert msgspec.msgpack.encode(replayed) == msgspec.msgpack.encode(figures["liquidations"])
    # and the replay reaches the very state the venue snapshotted
    assert main(["replay", str(data), "--verify"]) == 0
    assert "PASS" in capsys.readouterr().out
    # the page's replay (``exchange-sim web --data-dir``) steps through the same journal, from seq 1
    from exchange_sim.web.sources import ReplaySource

    src = ReplaySource(data, account=demo.POOLED)
    assert len(src.records) == seq and src.records[0].seq == 1
    # a second demo into the same dir is refused: its figures assume a fresh venue
    with pytest.raises(ValueError, match="already holds a run"):
        demo.run(fast=True, out=io.StringIO(), web_hint=False, default_ports=False, data_dir=data)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT")
def test_ctrl_c_during_the_demo_ends_cleanly(tmp_path):
    """Ctrl-C mid-story: one line, the venue stopped, exit 0 as ``serve`` exits
    on SIGINT, no traceback; the journal so far still replays. (``demo.run``
    as ``exchange-sim demo`` calls it, on free ports rather than 7001/7002.)"""
    data = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    code = ("import sys; from exchange_sim import demo; "
            "demo.run(data_dir=sys.argv[1], web_hint=False, default_ports=False)")
    p = subprocess.Popen([sys.executable, "-c", code, str(data)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        seen = ""
        while "== 1." not in seen and time.monotonic() < deadline:  # in the story (not the fast mode: it pauses)
            line = p.stdout.readline()
            if not line:
                break
            seen += line
        assert "== 1." in seen, seen + p.stderr.read()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    assert p.returncode == 0, err
    assert "Traceback" not in err, err
    assert "interrupted (Ctrl-C): stopping the venue" in out
    assert len(err.strip().splitlines()) <= 2, err
    assert main(["replay", str(data)]) == 0
