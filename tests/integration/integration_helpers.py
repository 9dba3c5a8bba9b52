"""Helpers for the integration tests: config overrides written as TOML, and
a real ``exchange-sim serve`` subprocess (see ``conftest.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from exchange_sim import config as config_mod
from exchange_sim.config import toml_value

ADMIN_KEY = "admin-key-change-me"
KEYS = {1: "demo-key-maker-1", 2: "demo-key-taker-2", 3: "demo-key-hunter-3", 4: "demo-key-student-4"}


# ------------------------------------------------------------- TOML out


def dump_toml(data: dict) -> str:
    """Enough TOML for exchange-sim configs: tables, arrays of tables, inline values."""
    out: list[str] = []

    def table(prefix: str, d: dict) -> None:
        scalars = {k: v for k, v in d.items() if not _is_table(v) and not _is_table_array(v)}
        if prefix:
            out.append(f"[{prefix}]")
        for k, v in scalars.items():
            out.append(f'"{k}" = {toml_value(v)}')
        out.append("")
        for k, v in d.items():
            name = f"{prefix}.{k}" if prefix else k
            if _is_table(v):
                table(name, v)
            elif _is_table_array(v):
                for item in v:
                    out.append(f"[[{name}]]")
                    for ik, iv in item.items():
                        out.append(f'"{ik}" = {toml_value(iv)}')
                    out.append("")

    table("", data)
    return "\n".join(out)


def _is_table(v) -> bool:
    return isinstance(v, dict) and bool(v)


def _is_table_array(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def config_text(server: dict | None = None, venue: dict | None = None, sections: dict | None = None) -> str:
    """The default config with ``[server]`` / ``[venue]`` (and any other
    top-level table in ``sections``) keys overridden."""
    data = tomllib.loads(config_mod.default_text())
    data.setdefault("server", {}).update(server or {})
    data.setdefault("venue", {}).update(venue or {})
    for name, values in (sections or {}).items():
        data.setdefault(name, {}).update(values)
    text = dump_toml(data)
    config_mod.loads(text)  # fail here, readably, on a bad override
    return text


# ------------------------------------------------------------ server proc


@dataclass
class ServerProc:
    proc: subprocess.Popen
    orders: str
    market_data: str
    log_path: Path
    banner: list[str] = field(default_factory=list)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_server(tmp_path: Path, server: dict | None = None, venue: dict | None = None,
                 args: tuple[str, ...] = (), duration: float = 240.0, ready_timeout: float = 20.0,
                 sections: dict | None = None) -> ServerProc:
    cfg = tmp_path / f"config-{time.monotonic_ns()}.toml"
    cfg.write_text(config_text(server, venue, sections))
    out_path = tmp_path / f"server-{time.monotonic_ns()}.out"
    log_path = tmp_path / f"server-{time.monotonic_ns()}.log"
    cmd = [sys.executable, "-m", "exchange_sim.cli", "serve", "--config", str(cfg),
           "--orders", "tcp://127.0.0.1:*", "--market-data", "tcp://127.0.0.1:*",
           "--duration", str(duration), *args]
    with open(out_path, "w") as out, open(log_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + ready_timeout
    while True:
        lines = out_path.read_text().splitlines()
        if "ready" in lines:
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start:\n{out_path.read_text()}\n{log_path.read_text()}")
        time.sleep(0.02)
    eps = {ln.split(":", 1)[0]: ln.split(None, 1)[1] for ln in lines if ln.startswith(("orders:", "market-data:"))}
    return ServerProc(proc, eps["orders"], eps["market-data"], log_path, lines)


def wait_for(pred, timeout: float, what: str, every: float = 0.05):
    """``pred()``'s first truthy value, polled every ``every`` s; fails the
    test naming ``what`` after ``timeout`` s (a bounded wait, never a hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


# --- ccxt facade tests: one exchange config and one two-sided BTC quote


def cfg(server, account: int = 2, **extra) -> dict:
    """The facade's config for ``account`` on a test server."""
    return {"apiKey": f"{account}:{KEYS[account]}",
            "urls": {"api": {"orders": server.orders, "marketData": server.market_data}}, **extra}


def quote(server, ctx=None, bid: str = "59990.0", ask: str = "60010.0", size: str = "5"):
    """Account 1 rests ``size`` BTC on each side; returns its client (close it)."""
    from clients import Client

    maker = Client(server.orders, 1, KEYS[1], context=ctx)
    maker.buy("BTC-PERP", size, bid)
    maker.sell("BTC-PERP", size, ask)
    return maker
