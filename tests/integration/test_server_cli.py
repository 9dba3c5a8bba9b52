"""``exchange-sim serve`` and ``exchange-sim keys`` as a user runs them."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
import zmq

from exchange_sim import config as config_mod
from integration_helpers import start_server


def test_keys_prints_a_usable_pair():
    out = subprocess.run([sys.executable, "-m", "exchange_sim.cli", "keys"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    keys = tomllib.loads(out)
    assert len(keys["curve_public_key"]) == 40 and len(keys["curve_secret_key"]) == 40
    assert zmq.curve_public(keys["curve_secret_key"].encode()).decode() == keys["curve_public_key"]


@pytest.mark.deadline(40)
def test_serve_prints_endpoints_and_stops_cleanly(tmp_path):
    sp = start_server(tmp_path)
    assert sp.orders.startswith("tcp://127.0.0.1:") and sp.market_data.startswith("tcp://127.0.0.1:")
    cfg = config_mod.default()
    assert f"admin key:   {cfg.server.admin_key}" in sp.banner
    assert any(line.startswith("account 1 ") and cfg.server.accounts[0].api_key in line for line in sp.banner)
    assert sp.stop() == 0  # SIGTERM: a clean exit
    sp2 = start_server(tmp_path, duration=0.5)
    assert sp2.proc.wait(20) == 0  # --duration: stops by itself


def test_serve_refuses_a_bad_config(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(config_mod.default_text().replace("heartbeat_timeout_ms = 5000", "heartbeat_timeout_ms = 10"))
    res = subprocess.run([sys.executable, "-m", "exchange_sim.cli", "serve", "--config", str(bad)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "heartbeat_timeout_ms" in res.stderr
