"""What the Binance gateway costs per request: GET /fapi/v1/depth and signed
POST /fapi/v1/order through `exchange-sim gateway`, against the same commands
(QueryBook, NewOrder) sent straight to the venue over ZeroMQ with
clients.aio.AsyncClient. Same server, same machine, same concurrency (16 in
flight); the figure is the ratio gateway ÷ ZeroMQ, plus each p99.

    python benchmarks/bench_gateway.py [N]                          # one run, prints the table
    python -m pytest benchmarks/bench_gateway.py --benchmark-disable  # smoke: tiny N

The orders are IOC limit buys far below the book (they expire at once), so
the venue's 200-open-orders limit never interferes and every order is a full
validate -> match -> clear pass, journaled by the server like any other.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

KEY, SECRET, ACCOUNT = "demo-key-taker-2", "demo-secret-taker-2", 2
CONCURRENCY = 16


def _start(cmd: list[str], out: Path) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=open(out, "w"), stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 30
    while "ready" not in out.read_text().splitlines():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{cmd[3]} did not start: {out.read_text()}")
        time.sleep(0.02)
    return proc


def _line(out: Path, prefix: str) -> str:
    return next(ln.split(None, 1)[1] for ln in out.read_text().splitlines() if ln.startswith(prefix))


async def _timed(n: int, one) -> tuple[float, float]:
    """n calls of ``one(i)``, CONCURRENCY in flight: (requests/s, p99 ms)."""
    lat: list[float] = []
    it = iter(range(n))

    async def worker():
        for i in it:
            t0 = time.perf_counter()
            await one(i)
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    wall = time.perf_counter() - t0
    lat.sort()
    return n / wall, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000


async def _measure(orders: str, url: str, n: int) -> dict:
    import aiohttp

    from clients.aio import AsyncClient

    zc = await AsyncClient.connect(orders, ACCOUNT, KEY)
    out: dict = {}
    async with aiohttp.ClientSession() as http:
        async def rest_depth(i):
            async with http.get(f"{url}/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 100}) as r:
                assert r.status == 200, await r.text()
                await r.read()

        async def zmq_depth(i):
            await zc.book("BTC-PERP", 100)

        async def rest_order(i):
            qs = urllib.parse.urlencode({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "IOC",
                                         "quantity": "0.01", "price": "57000.0",
                                         "timestamp": time.time_ns() // 1_000_000})
            qs += "&signature=" + hmac.new(SECRET.encode(), qs.encode(), hashlib.sha256).hexdigest()
            async with http.post(f"{url}/fapi/v1/order", data=qs, headers={
                    "X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"}) as r:
                assert r.status == 200, await r.text()
                await r.read()

        async def zmq_order(i):
            await zc.place("BTC-PERP", "buy", "0.01", "57000.0", tif="ioc")

        for name, rest, direct in (("depth", rest_depth, zmq_depth), ("order", rest_order, zmq_order)):
            await _timed(min(n, 200), rest)  # warm-up: sessions, connection pool
            await _timed(min(n, 200), direct)
            g_rate, g_p99 = await _timed(n, rest)
            z_rate, z_p99 = await _timed(n, direct)
            out[name] = {"gateway_rps": g_rate, "gateway_p99_ms": g_p99, "zmq_rps": z_rate, "zmq_p99_ms": z_p99,
                         "ratio": g_rate / z_rate}
    await zc.close()
    return out


def run(n: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        so, go = Path(d) / "server.out", Path(d) / "gateway.out"
        server = _start([sys.executable, "-m", "exchange_sim.cli", "serve", "--orders", "tcp://127.0.0.1:*",
                         "--market-data", "tcp://127.0.0.1:*", "--duration", "600"], so)
        gateway = None
        try:
            orders, md = _line(so, "orders:"), _line(so, "market-data:")
            gateway = _start([sys.executable, "-m", "exchange_sim.cli", "gateway", "--orders", orders,
                              "--market-data", md, "--http", "127.0.0.1:0", "--duration", "600"], go)
            return asyncio.run(_measure(orders, _line(go, "http:"), n))
        finally:
            for p in (gateway, server):
                if p is not None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(10)
                    except subprocess.TimeoutExpired:
                        p.kill()


def _table(res: dict) -> str:
    rows = ["| request | gateway req/s | p99 ms | ZeroMQ req/s | p99 ms | gateway ÷ ZeroMQ |", "|---|---|---|---|---|---|"]
    for name, r in res.items():
        rows.append(f"| {name} | {r['gateway_rps']:,.0f} | {r['gateway_p99_ms']:.1f} | {r['zmq_rps']:,.0f} | "
                    f"{r['zmq_p99_ms']:.1f} | {r['ratio']:.2f} |")
    return "\n".join(rows)


def test_gateway_cost(benchmark):
    pytest = __import__("pytest")
    pytest.importorskip("aiohttp")
    n = 50 if benchmark.disabled else 3000
    res = benchmark.pedantic(run, args=(n,), rounds=1, iterations=1)
    benchmark.extra_info.update({f"{name}_{k}": v for name, r in res.items() for k, v in r.items()})
    print("\n" + _table(res))
    assert all(r["gateway_rps"] > 0 and r["zmq_rps"] > 0 for r in res.values())


if __name__ == "__main__":
    print(_table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)))
