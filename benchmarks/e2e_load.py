"""End-to-end load over real sockets: server and load clients in separate processes.

    python benchmarks/e2e_load.py throughput --clients 2 --orders-per-client 100000
    python benchmarks/e2e_load.py throughput --clients 2 --orders-per-client 200000 --batch 100
    python benchmarks/e2e_load.py latency --rate 20000 --seconds 5
    python benchmarks/e2e_load.py core --orders-per-client 100000       # the venue alone, same orders

Without ``--endpoint`` the script starts ``exchange-sim serve`` itself (a
bench config: one account per client, rate limits off, tcp on 127.0.0.1
free ports) and stops it at the end.

The order flow (per client, one account each, BTC-PERP around the $60,000
mark), what a market maker's requoting looks like:

- a new GTC limit order 1-100 ticks away from mark on the client's side
  (even clients bid, odd clients offer), with a client order id;
- once 100 of its orders rest, every new order is followed by a cancel of
  the order placed 100 before (by client order id), so half the messages
  are new orders, half cancels, and the book stays ~100 orders per client;
- every 20th new order is an IOC that crosses the touch and trades.

"orders/s" counts order-entry messages (new + cancel), each acknowledged.
``throughput`` keeps ``--window`` requests in flight per client (pipelined)
and times first send to last reply. ``latency`` sends at a fixed rate
(open loop, paced by the clock, not by replies) from one client and reports
ack latency percentiles from send to reply, measured in the client; it
sleeps when the next send is more than 120 µs away (a reply that lands
during such a sleep is stamped up to ~60 µs late) and spins otherwise.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

MARK = 600_000  # BTC-PERP ticks ($60,000.0)
SYMBOL = "BTC-PERP"


# ------------------------------------------------------------ order flow


def order_flow(client: int, n: int, seed: int = 1, account: int | None = None, tag: str = "") -> list:
    """``n`` order-entry commands for account ``client + 1`` (see module docstring).
    ``tag`` makes the client order ids unique per run (the server remembers them)."""
    from protocol.messages import CancelOrder, NewOrder, Side, TimeInForce

    rng = random.Random(seed * 1000 + client)
    account = client + 1 if account is None else account
    buy = client % 2 == 0
    side = Side.BUY if buy else Side.SELL
    out: list = []
    placed = 0
    resting: list[str] = []
    while len(out) < n:
        if placed % 20 == 19:  # crossing IOC
            px = MARK + 200 if buy else MARK - 200
            out.append(NewOrder(account=account, symbol=SYMBOL, side=side, qty=rng.randint(1, 5), price=px,
                                tif=TimeInForce.IOC))
            placed += 1
            continue
        off = rng.randint(1, 100)
        cid = f"{tag}c{client}-{placed}"
        out.append(NewOrder(account=account, symbol=SYMBOL, side=side, qty=rng.randint(1, 20),
                            price=MARK - off if buy else MARK + off, client_order_id=cid))
        placed += 1
        resting.append(cid)
        if len(resting) > 100 and len(out) < n:
            out.append(CancelOrder(account=account, client_order_id=resting.pop(0)))
    return out[:n]


# ------------------------------------------------------------ server


def bench_config(clients: int) -> str:
    """The default config with bench accounts and limits out of the way."""
    from exchange_sim import config as config_mod

    text = config_mod.default_text()
    data = tomllib.loads(text)
    head = text.split("\n[server]")[0]
    accounts = "\n".join(
        f'[[server.accounts]]\naccount = {c + 1}\napi_key = "bench-key-{c + 1:04d}"\n'
        f'deposits = {{ USDT = "1000000000" }}\n' for c in range(max(clients, 2) + 2)
    )
    server = data["server"]
    text = head + (
        "\n[server]\n"
        f'orders_endpoint = "tcp://127.0.0.1:*"\nmarket_data_endpoint = "tcp://127.0.0.1:*"\n'
        f'admin_key = "{server["admin_key"]}"\n'
        "rate_limit_per_s = 100000000\nrate_limit_burst = 100000000\nheartbeat_timeout_ms = 60000\n"
        "router_hwm = 1000000\npub_hwm = 1000000\nmax_batch = 1000\n\n" + accounts
    )
    config_mod.loads(text)
    return text


class ServerProcess:
    def __init__(self, clients: int, journal: bool = False, liquidity: bool = False):
        self.dir = tempfile.TemporaryDirectory()
        cfg = Path(self.dir.name) / "bench.toml"
        cfg.write_text(bench_config(clients))
        self.out = Path(self.dir.name) / "out.txt"
        extra = ["--data-dir", str(Path(self.dir.name) / "data")] if journal else []
        if liquidity:  # house agents quoting and trading inside the server (docs/adr/0013-house-liquidity.md)
            extra += ["--liquidity", "DEFAULT"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exchange_sim.cli", "serve", "--config", str(cfg), "--duration", "900", *extra],
            stdout=open(self.out, "w"), stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while "ready" not in self.out.read_text().splitlines():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start: " + self.out.read_text())
            time.sleep(0.02)
        lines = self.out.read_text().splitlines()
        self.orders = next(ln.split()[1] for ln in lines if ln.startswith("orders:"))
        self.market_data = next(ln.split()[1] for ln in lines if ln.startswith("market-data:"))

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used (contention-proof cost)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.dir.cleanup()


# ------------------------------------------------------------ workers


def _login(sock, account: int) -> None:
    from protocol.session import Login, LoginOk, decode_outbound, encode

    sock.send(encode(Login(account=account, api_key=f"bench-key-{account:04d}")))
    if not sock.poll(10_000):
        raise RuntimeError("no login answer")
    ans = decode_outbound(sock.recv())
    if type(ans) is not LoginOk:
        raise RuntimeError(f"login refused: {ans}")


def _is_reply(frame: bytes) -> bool:
    """Reply or BatchReply, not a Push or Heartbeat, without decoding: the
    tag is the first key of the map (``83 a3 "msg" a5 "Reply"``)."""
    return frame[6:11] == b"Reply" or frame[6:16] == b"BatchReply"


def _throughput_worker(endpoint: str, client: int, n: int, window: int, batch: int, go, out) -> None:
    import zmq

    from protocol.session import Batch, BatchReply, Reply, Request, decode_outbound, encode

    cmds = order_flow(client, n, tag=os.urandom(4).hex())
    if batch > 1:
        frames = [encode(Batch(id=i, cmds=cmds[k:k + batch])) for i, k in enumerate(range(0, n, batch))]
    else:
        frames = [encode(Request(id=i, cmd=c)) for i, c in enumerate(cmds)]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.sndhwm = sock.rcvhwm = 0
    sock.connect(endpoint)
    _login(sock, client + 1)
    go.wait()
    send, recv = sock.send, sock.recv
    total = len(frames)
    sent = got = 0
    t0 = time.perf_counter()
    while got < total:
        while sent < total and sent - got < window:
            send(frames[sent])
            sent += 1
        got += _is_reply(recv())
        while got < sent:
            try:
                frame = recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            got += _is_reply(frame)
    elapsed = time.perf_counter() - t0
    # the last answer really is a reply to the last request
    sock.send(frames[-1])
    while True:
        last = decode_outbound(recv())
        if type(last) in (Reply, BatchReply):
            break
    ok = last.id == len(frames) - 1
    out.put({"client": client, "orders": n, "seconds": elapsed, "ok": ok})
    sock.close()
    ctx.term()


def run_throughput(endpoint: str, clients: int, per_client: int, window: int, batch: int) -> dict:
    ctx = mp.get_context("fork")
    go = ctx.Event()
    out = ctx.Queue()
    procs = [ctx.Process(target=_throughput_worker, args=(endpoint, c, per_client, window, batch, go, out))
             for c in range(clients)]
    for p in procs:
        p.start()
    time.sleep(1.0 + per_client / 200_000)  # workers build and encode their orders, log in
    t0 = time.perf_counter()
    go.set()
    results = [out.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(30)
    total = sum(r["orders"] for r in results)
    slowest = max(r["seconds"] for r in results)
    return {
        "mode": "throughput", "clients": clients, "orders": total, "batch": batch, "window": window,
        "seconds": round(slowest, 3), "orders_per_s": round(total / slowest), "wall_s": round(wall, 3),
        "all_answered": all(r["ok"] for r in results),
    }


def run_latency(endpoint: str, rate: float, seconds: float, warmup: float = 0.5, account: int = 3) -> dict:
    """One client at a fixed rate; ack latency from send to reply, in the client."""
    import zmq

    from protocol.session import Request, decode_outbound, encode

    n = int(rate * (seconds + warmup))
    cmds = order_flow(0, n, seed=2, account=account, tag=os.urandom(4).hex())
    frames = [encode(Request(id=i, cmd=c)) for i, c in enumerate(cmds)]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.sndhwm = sock.rcvhwm = 0
    sock.connect(endpoint)
    _login(sock, account)
    sent_at = [0] * n
    lat = [0] * n
    send, recv = sock.send, sock.recv
    clock = time.perf_counter_ns
    interval = int(1e9 / rate)
    got = 0
    t0 = clock()
    i = 0
    while got < n:
        now = clock()
        while i < n and t0 + i * interval <= now:
            sent_at[i] = clock()
            send(frames[i])
            i += 1
        while True:
            try:
                frame = recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            msg = decode_outbound(frame)
            rid = getattr(msg, "id", None)
            if rid is None:
                continue  # a heartbeat
            lat[rid] = clock() - sent_at[rid]
            got += 1
        if i >= n and got < n:
            sock.poll(10)
        elif i < n:
            gap = t0 + i * interval - clock()
            if gap > 120_000:  # give the core back rather than spin: the server shares it
                time.sleep((gap - 60_000) / 1e9)
    elapsed = (clock() - t0) / 1e9
    sock.close()
    ctx.term()
    skip = int(rate * warmup)
    xs = sorted(lat[skip:])

    def pct(p: float) -> float:
        return round(xs[min(len(xs) - 1, int(p / 100 * len(xs)))] / 1000, 1)

    return {
        "mode": "latency", "rate": rate, "orders": n - skip, "seconds": round(elapsed, 3),
        "achieved_per_s": round(n / elapsed), "p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99),
        "p99.9_us": pct(99.9), "max_us": round(xs[-1] / 1000, 1),
    }


def run_core(clients: int, per_client: int) -> dict:
    """The same order flow straight into ``Venue.apply``: the server's ceiling."""
    from exchange_sim import config as config_mod
    from exchange_sim.server import Server

    srv = Server(config_mod.loads(bench_config(clients)))
    srv.start_up()
    flows = [order_flow(c, per_client) for c in range(clients)]
    interleaved = [cmd for group in zip(*flows) for cmd in group]
    apply = srv.venue.apply
    t0 = time.perf_counter()
    for cmd in interleaved:
        apply(cmd, 0)
    dt = time.perf_counter() - t0
    return {"mode": "core", "orders": len(interleaved), "seconds": round(dt, 3),
            "orders_per_s": round(len(interleaved) / dt)}


def cpu_idle(seconds: float = 0.5) -> float:
    """Idle CPUs over a short sample (2.0 = both cores free): other work on the
    machine skews every wall-clock figure, so each result records it."""
    def read():
        vals = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return vals[3] + vals[4], sum(vals)
    i0, t0 = read()
    time.sleep(seconds)
    i1, t1 = read()
    return round((i1 - i0) / max(1, t1 - t0) * os.cpu_count(), 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["throughput", "latency", "core"])
    ap.add_argument("--endpoint", help="orders endpoint of a running server (default: start one)")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--orders-per-client", type=int, default=100_000)
    ap.add_argument("--window", type=int, default=1000, help="requests in flight per client")
    ap.add_argument("--batch", type=int, default=1, help="commands per Batch frame (1 = one per message)")
    ap.add_argument("--rate", type=float, default=20_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--journal", action="store_true",
                    help="start the server with --data-dir (journal with group commit, snapshots)")
    ap.add_argument("--liquidity", action="store_true",
                    help="start the server with --liquidity DEFAULT (house maker, arbitrageur, noise flow)")
    args = ap.parse_args(argv)
    idle = cpu_idle()
    if args.mode == "core":
        print(json.dumps(run_core(args.clients, args.orders_per_client)))
        return 0
    server = None if args.endpoint else ServerProcess(args.clients, journal=args.journal,
                                                          liquidity=args.liquidity)
    endpoint = args.endpoint or server.orders
    try:
        cpu0 = server.cpu_seconds() if server else 0.0
        if args.mode == "throughput":
            window = args.window if args.batch == 1 else max(2, args.window // args.batch)
            res = run_throughput(endpoint, args.clients, args.orders_per_client, window, args.batch)
        else:
            res = run_latency(endpoint, args.rate, args.seconds)
        if server:
            res["server_cpu_us_per_order"] = round((server.cpu_seconds() - cpu0) * 1e6 / res["orders"], 1)
        res["machine_idle_before"] = idle
    finally:
        if server is not None:
            server.stop()
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
