"""The example bots and ``exchange-sim load`` against a real server.

- every bot answers ``--help``;
- market maker + noise taker: both get fills; the maker's quotes rest as
  post-only, it never takes, and an index move makes it *amend* (same
  order ids) rather than cancel and replace; it leaves nothing behind;
- leveraged trader + an admin shock: liquidated, and the watcher (a real
  subprocess, stopped with SIGTERM) prints the public liquidation notice.
  Numbers: account 4 holds 10,000 USDT + 0.5 BTC, equity 10,000 + 0.5 x
  60,000 x 0.95 = 38,500; 10x = 6.416 BTC bought at 60,010 (taker fee
  192.5). BTC -30% -> 42,000: equity 9,807.5 + 0.5 x 42,000 x 0.95 - 6.416
  x 18,010 = 9,807.5 + 19,950 - 115,552 = -85,795, so the whole position
  goes, at prices no worse than the bankruptcy price 42,000 + 85,795 / 6.416
  = 55,372: the 2 BTC bid at 59,000 takes 2.000 in the book (the public
  notice), the insurance fund the other 4.416;
- ``exchange-sim load --spawn`` prints a consistent JSON report, with
  liquidations after its shock, and Ctrl-C on a run against a running
  server still ends with the report.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal as D

import pytest

from clients import Client
from clients.bots import leveraged_trader, market_maker, noise_taker
from clients.loadgen import parse_mix, parse_shock
from clients.models import Fill, OrderUpdate
from integration_helpers import ADMIN_KEY, KEYS, wait_for

BOTS = ["market_maker", "noise_taker", "leveraged_trader", "liquidation_watcher"]


@pytest.mark.deadline(30)
def test_every_bot_has_help():
    procs = {b: subprocess.Popen([sys.executable, "-m", f"clients.bots.{b}", "--help"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for b in BOTS}
    procs["load"] = subprocess.Popen([sys.executable, "-m", "exchange_sim.cli", "load", "--help"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for name, p in procs.items():
        out, err = p.communicate(timeout=20)
        assert p.returncode == 0, (name, err)
        assert "--endpoint" in out or "--orders" in out, name
        assert "--duration" in out, name


def test_shock_and_mix_syntax():
    s = parse_shock("BTC:-30%@20s")
    assert (s.asset, s.pct, s.at) == ("BTC", D(-30), 20.0) and str(s) == "BTC:-30%@20s"
    assert parse_shock("eth:+12.5%@1.5").pct == D("12.5")
    with pytest.raises(ValueError):
        parse_shock("BTC-30%")
    assert parse_mix("limit=60,market=15,cancel=25") == pytest.approx((0.6, 0.15, 0.25))
    assert parse_mix("2/1/1") == pytest.approx((0.5, 0.25, 0.25))
    with pytest.raises(ValueError):
        parse_mix("cancel=100")


@pytest.mark.deadline(40)
def test_market_maker_and_noise_taker(server):
    stop = threading.Event()
    mm_out, nt_out = io.StringIO(), io.StringIO()
    res: dict = {}
    mm = threading.Thread(target=lambda: res.setdefault("mm", market_maker.run(
        server.orders, server.market_data, 1, symbol="BTC-PERP", stop=stop, out=mm_out)))
    # a second session of the maker's account sees every event of the account: an independent witness
    with Client(server.orders, 1, KEYS[1]) as witness, Client(server.orders, 0, ADMIN_KEY) as admin:
        mm.start()
        wait_for(lambda: len(witness.open_orders("BTC-PERP")) == 6, 10, "six quotes")
        first_ids = {o.order_id for o in witness.open_orders("BTC-PERP")}
        assert {o.tif for o in witness.open_orders("BTC-PERP")} == {"post_only"}
        nt = threading.Thread(target=lambda: res.setdefault("nt", noise_taker.run(
            server.orders, server.market_data, 2, symbol="BTC-PERP", rate=10, seed=7, duration=4.0, out=nt_out)))
        nt.start()
        time.sleep(1.5)
        admin.set_index_price("BTC", "60060")  # +10 bps: every quote should follow by amend
        nt.join(15)
        time.sleep(0.5)
        stop.set()
        mm.join(15)
        assert not mm.is_alive() and not nt.is_alive()
        seen = witness.drain_events()
        assert witness.open_orders("BTC-PERP") == []  # the maker cancelled everything on the way out
    mm_stats, nt_stats = res["mm"], res["nt"]
    assert mm_stats.fills > 0 and nt_stats.fills > 0, (mm_out.getvalue(), nt_out.getvalue())
    fills = [e for e in seen if isinstance(e, Fill)]
    assert fills and all(f.liquidity == "maker" for f in fills)  # post-only: the maker never takes
    assert mm_stats.taker_fills == 0
    amends = [e for e in seen if isinstance(e, OrderUpdate) and e.kind == "amended"]
    assert mm_stats.amended > 0 and len(amends) >= mm_stats.amended
    assert {a.order_id for a in amends} & first_ids  # the original quotes were amended, keeping their ids
    assert any(a.price is not None and a.price > D("60000") for a in amends if a.order_id in first_ids)


@pytest.mark.deadline(40)
def test_leveraged_trader_is_liquidated_and_the_watcher_sees_it(server, tmp_path):
    with Client(server.orders, 1, KEYS[1]) as maker:
        maker.sell("BTC-PERP", "10", "60010.0")  # liquidity for the 10x buy
        maker.buy("BTC-PERP", "2", "59000.0")  # a bid the liquidation can sell into
    log = tmp_path / "watcher.out"
    with open(log, "w") as f:
        watcher = subprocess.Popen([sys.executable, "-m", "clients.bots.liquidation_watcher",
                                    "--endpoint", server.orders, "--market-data", server.market_data,
                                    "--account", "4", "--every", "0.5", "--duration", "30"],
                                   stdout=f, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "margin ratio" in log.read_text(), 15, "the watcher to start")
        out = io.StringIO()
        res: dict = {}
        t = threading.Thread(target=lambda: res.setdefault("lt", leveraged_trader.run(
            server.orders, server.market_data, 4, leverage="10", every=0.5, duration=20, out=out)))
        t.start()
        wait_for(lambda: "opened:" in out.getvalue(), 10, "the position to open")
        assert "opened: 6.416 @ 60010.0" in out.getvalue()
        with Client(server.orders, 0, ADMIN_KEY) as admin:
            admin.shock_price("BTC", -30)
        t.join(15)
        stats = res["lt"]
        assert stats.liquidated and "liquidation" in stats.margin_calls, out.getvalue()
        assert "the position is gone: liquidated" in out.getvalue()
        assert "slice: 6.416 BTC-PERP (2.000 in the book, 4.416 taken over), bankruptcy price 55372.0" in out.getvalue()
        wait_for(lambda: "LIQUIDATION BTC-PERP: sell 2.000 @ 59000.0" in log.read_text(), 5, "the public notice")
    finally:
        watcher.send_signal(signal.SIGTERM)
        rc = watcher.wait(10)
    text = log.read_text()
    assert rc == 0 and "watcher stopped (SIGTERM)" in text, text
    assert "MARGIN CALL liquidation: account 4" in text and "account 4 liquidation started" in text


def _check_report(rep: dict) -> None:
    o = rep["orders"]
    assert o["sent"] >= o["acked"] > 0
    assert o["accepted"] + o["rejected"] == o["acked"]
    assert sum(rep["rejects"].values()) == o["rejected"]
    assert o["limit"] + o["market"] + o["cancel"] == o["sent"]
    assert rep["fills"] >= rep["trades"] > 0  # a trade is two fills (maker, taker)
    assert rep["ack_ms"]["p50"] <= rep["ack_ms"]["p99"] <= rep["ack_ms"]["max"]


@pytest.mark.deadline(45)
def test_load_spawn_with_a_shock(tmp_path):
    res = subprocess.run([sys.executable, "-m", "exchange_sim.cli", "load", "--spawn", "--duration", "5",
                          "--accounts", "200", "--shock", "BTC:-30%@2s"],
                         capture_output=True, text=True, timeout=40)
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    _check_report(rep)
    assert rep["stopped_by"] == "duration" and rep["config"]["spawned_server"]
    assert rep["orders"]["sent"] > 2000  # 2,000/s for 5 s, even on a busy machine
    (shock,) = rep["shocks"]
    assert shock["shock"] == "BTC:-30%@2s" and shock["liquidations"] > 0
    assert rep["liquidations"]["started"] >= shock["liquidations"] > 0
    assert "orders/s" in res.stderr and "liquidations" in res.stderr  # the progress lines


@pytest.mark.deadline(30)
def test_load_against_a_running_server_stops_on_ctrl_c(server, tmp_path):
    report = tmp_path / "report.json"
    p = subprocess.Popen([sys.executable, "-m", "exchange_sim.cli", "load", "--orders", server.orders,
                          "--market-data", server.market_data, "--accounts", "100", "--rate", "500",
                          "--duration", "60", "--report", str(report)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=15)
    assert p.returncode == 0, err
    rep = json.loads(report.read_text())
    _check_report(rep)
    assert rep["stopped_by"] == "interrupted" and rep["elapsed_s"] < 10
    assert not rep["config"]["spawned_server"]
