"""The Node.js reference client (clients/node, written from docs/protocol.md
alone) against a real server: login and limits, book sync with a gap,
place, cancel, a fill against another account's resting order, open orders,
account, history (its own fills, ended orders, candles), 64-bit timestamps. Skipped only where ``node`` is not installed;
its npm dependencies must be there (``npm ci --prefix clients/node``, which
.ci/run does), else the test fails saying so."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from integration_helpers import KEYS

NODE = shutil.which("node")
CLIENT = Path(__file__).resolve().parents[2] / "clients" / "node"

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


@pytest.mark.deadline(90)
def test_the_node_reference_client_trades_and_syncs_a_book(server):
    assert (CLIENT / "node_modules" / "zeromq").is_dir() and (CLIENT / "node_modules" / "@msgpack").is_dir(), (
        "the Node client's dependencies are missing: run `npm ci --prefix clients/node`")
    run = subprocess.run(
        [NODE, "demo.mjs", "--orders", server.orders, "--market-data", server.market_data,
         "--maker", f"1:{KEYS[1]}", "--taker", f"3:{KEYS[3]}"],
        cwd=CLIENT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, f"node client failed:\n{run.stdout}\n{run.stderr}"
    steps = {}
    for line in run.stdout.splitlines():
        rec = json.loads(line)
        steps[rec.pop("step")] = rec
    assert list(steps) == ["login", "instruments", "synced", "maker_ask", "resend", "cancel", "gap", "fill",
                           "open_orders", "account", "history", "heartbeat", "done"]
    # the limits it read from LoginOk are the server's defaults
    assert steps["login"] == {"account": 3, "protocol_version": 1, "max_batch": 1000, "max_frame_bytes": 1_048_576,
                              "rate_limit_per_s": 100_000, "rate_limit_burst": 200_000, "idempotency_window": 10_000}
    assert steps["instruments"] == {"tick_size": "0.1", "lot_size": "0.001", "btc_index_type": "bigint"}
    assert steps["synced"] == {"seq": 0, "bids": 0, "asks": 0}  # an empty book at start
    assert steps["maker_ask"]["best_ask"] == 600_100
    assert steps["resend"] == {"duplicate": True, "first": "OrderAccepted", "order_id": steps["cancel"]["order_id"]}
    assert steps["cancel"]["cancelled"] == steps["cancel"]["order_id"]
    assert (steps["cancel"]["cause"], steps["cancel"]["remaining"]) == ("user", 7)
    # the dropped delta was noticed from the next one's seq, and a snapshot re-synced the mirror
    gap = steps["gap"]
    assert gap["gaps"] == 1 and gap["snapshots"] == 2 and gap["why"].startswith("delta seq 3 after 1"), gap
    assert gap["best_ask"] == 600_100
    fill = steps["fill"]
    assert (fill["price"], fill["qty"], fill["liquidity"], fill["position"]) == (600_100, 20, "taker", 20)
    # 20 lots x 0.001 BTC x $60,010 x 0.05% taker fee = $0.6001 = 600,100 USDT minor units
    assert fill["fee"] == 600_100
    assert (fill["maker_liquidity"], fill["maker_qty"], fill["maker_remaining"], fill["book_ask_left"]) == (
        "maker", 20, 30, 30)
    assert steps["open_orders"]["orders"] == [{"order_id": steps["maker_ask"]["order_id"], "qty": 30, "filled": 20,
                                               "price": 600_100, "client_order_id": "node-ask-1",
                                               "reduce_only": False}]
    acct = steps["account"]
    assert acct["positions"] == [{"symbol": "BTC-PERP", "qty": 20, "entry_price": 600_100}]
    assert acct["usdt"] == 100_000 * 10**6 - 600_100 and acct["margin_mode"] == "cross" and acct["equity_is_float"]
    hist = steps["history"]  # read back from the venue's history, not from what the client saw
    assert hist["my_trades"] == [{"order_id": hist["my_trades"][0]["order_id"], "price": 600_100, "qty": 20,
                                  "fee": 600_100, "ts_type": "bigint"}]
    assert hist["ended"] == [
        {"order_id": steps["cancel"]["order_id"], "status": "cancelled", "filled": 0, "client_order_id": "node-bid-1"},
        {"order_id": hist["my_trades"][0]["order_id"], "status": "filled", "filled": 20, "client_order_id": None}]
    assert hist["candle"] == {"open": 600_100, "close": 600_100, "volume": 20, "trades": 1}
    hb = steps["heartbeat"]
    assert hb["ts_type"] == "bigint" and int(hb["ts"]) > 2**53  # decoded exactly, not rounded to a double


VECTORS = sorted((CLIENT.parents[1] / "protocol" / "vectors").glob("*.json"))


@pytest.mark.deadline(60)
@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_the_node_client_replays_the_conformance_vectors(serve, path):
    """The vectors are language-neutral: a JavaScript runner (vectors.mjs)
    replays the same files as tests/integration/test_vectors.py."""
    srv = serve()
    run = subprocess.run(
        [NODE, "vectors.mjs", "--orders", srv.orders, "--market-data", srv.market_data, "--vector", str(path)],
        cwd=CLIENT, capture_output=True, text=True, timeout=45, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, f"vector {path.stem} failed in node:\n{run.stdout}\n{run.stderr}"
    assert run.stdout.split()[:2] == ["ok", path.stem]


@pytest.mark.deadline(60)
def test_the_node_vector_runner_fails_on_a_difference(serve, tmp_path):
    """A runner that passed everything would prove nothing: a vector whose
    expected LoginOk names the wrong account, and one that expects an omitted
    default to be absent where it is present, both fail naming the step."""
    srv = serve()
    login = {"msg": "Login", "account": 3, "api_key": KEYS[3]}
    for i, expect in enumerate(({"msg": "LoginOk", "account": 4}, {"msg": "LoginOk", "admin": "$absent"})):
        vec = tmp_path / f"broken-{i}.json"
        vec.write_text(json.dumps({"name": f"broken-{i}", "description": "x", "steps": [
            {"note": "wrong on purpose", "session": f"s{i}", "send": login, "expect": expect}]}))
        run = subprocess.run([NODE, "vectors.mjs", "--orders", srv.orders, "--market-data", srv.market_data,
                              "--vector", str(vec)], cwd=CLIENT, capture_output=True, text=True, timeout=30)
        assert run.returncode == 1 and f"broken-{i} step 0: wrong on purpose" in run.stderr, run.stderr
