"""Helpers for the gateway tests: an `exchange-sim gateway` subprocess in
front of a test server, and ccxt's real binanceusdm pointed at it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SECRETS = {1: "demo-secret-maker-1", 2: "demo-secret-taker-2", 3: "demo-secret-hunter-3", 4: "demo-secret-student-4"}


@dataclass
class GatewayProc:
    proc: subprocess.Popen
    url: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_gateway(tmp_path: Path, server, ready_timeout: float = 20.0, duration: float = 240.0) -> GatewayProc:
    out_path = tmp_path / f"gateway-{time.monotonic_ns()}.out"
    err_path = tmp_path / f"gateway-{time.monotonic_ns()}.err"
    cmd = [sys.executable, "-m", "exchange_sim.cli", "gateway", "--orders", server.orders,
           "--market-data", server.market_data, "--http", "127.0.0.1:0", "--duration", str(duration)]
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + ready_timeout
    while "ready" not in out_path.read_text().splitlines():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"gateway did not start:\n{out_path.read_text()}\n{err_path.read_text()}")
        time.sleep(0.02)
    url = next(ln.split(None, 1)[1] for ln in out_path.read_text().splitlines() if ln.startswith("http:"))
    return GatewayProc(proc, url)


def binanceusdm(url: str, account: int = 2):
    """ccxt's real binanceusdm with only its urls pointed at the gateway (docs/binance-gateway.md)."""
    import ccxt

    from integration_helpers import KEYS

    # fetchCurrencies off: with a key, ccxt otherwise asks Binance's spot wallet
    # (api.binance.com /sapi/v1/capital/config/getall), which is no futures endpoint
    ex = ccxt.binanceusdm({"apiKey": KEYS[account], "secret": SECRETS[account],
                           "options": {"fetchCurrencies": False}})
    ex.urls["api"] = {k: v.replace("https://fapi.binance.com", url) if isinstance(v, str) else v
                      for k, v in ex.urls["api"].items()}
    return ex
