"""``exchange-sim load``: many accounts, a target order rate, price shocks, honest figures.

    exchange-sim serve &                                   # in one terminal
    exchange-sim load --duration 10                        # 1,000 accounts, 2,000 orders/s
    exchange-sim load --spawn --accounts 5000 --rate 5000 --duration 60 --shock BTC:-30%@20s

How it drives the venue
-----------------------
Everything goes through **admin sessions** acting on behalf of the accounts
(an admin session may put any account number in a command): opening and
funding ``--accounts`` accounts (``OpenAccount`` + ``Deposit``), their
orders, the shocks (``ShockPrice``) and the margin queries. One connection
can carry every account because commands travel in ``Batch`` frames (one
frame, many commands, each answered on its own) and several frames are in
flight at once (pipelining, ``--window``): the generator never waits for one
reply before sending the next frame. The venue's per-session token bucket
(``[server] rate_limit_per_s``, 100,000/s in the embedded config, told to
us at login) counts every command of a batch, so above half of it the load
is spread over more sessions; refusals would show as ``rate_limited``.

Sending is **open loop**: the schedule is ``rate x elapsed`` orders, sent in
a frame every 5 ms whatever the replies do, so a slow venue shows up as
latency and as ``behind`` (orders the schedule wanted but the window did not
allow), not as a quietly lower rate.

The order flow (seeded: ``--seed``)
-----------------------------------
Account *i* trades one instrument (they take turns through ``--symbols``),
and has a direction (half long, half short) and a target position of
``--leverage`` x its ``--equity``. Each order is, by ``--mix``:

- limit: a GTC limit at the mark -10 to +40 bps on its own side (a fifth
  cross the spread and trade at once, the rest rest in the book);
- market: takes liquidity (the venue bounds it at 5% from the mark);
- cancel: of a random order the generator saw resting (it may have filled
  meanwhile: that reject is counted like any other).

Its side leans toward the target (70%) until the position is there, then
away (70%), so the accounts hover near the target leverage: a large enough
``--shock`` then liquidates the side it hurts. Sizes are 10-50% of the
target.

The figures (live on stderr, then a JSON report on stdout or ``--report``)
-------------------------------------------------------------------------
Every figure is counted by the generator from what it receives:

- ``sent``: order commands sent (new + cancel); ``acked``: those answered;
  ``accepted`` + ``rejected`` = ``acked``; ``rejects`` by reason sum to
  ``rejected``; ``unanswered`` = ``sent`` - ``acked`` at the end.
- ``orders_per_s``: acked / elapsed (live: over the last display interval).
- ``ack_ms``: per frame, from its send to its reply as the generator sees it
  (its own event loop included); every order of the frame counts with it.
- ``fills``: ``Fill`` events (one per side of a trade) and ``trades``:
  ``Trade`` prints, in the replies. An admin session's reply carries every
  event a command caused, for every account: makers' fills, liquidations.
- ``liquidations``: ``LiquidationStarted`` events in those replies (the
  orders' and the shocks'); ``liquidation_notices``: public
  ``LiquidationNotice`` messages from the PUB socket (any cause).
- ``below_warning``: the generator's accounts whose latest known margin ratio
  is below ``[risk] warning_ratio``. "Latest known" = the last of (a) the
  ``AccountUpdate`` and ``MarginCall`` events in replies and (b) a rolling
  ``QueryAccount`` sweep of every account, ``--sweep-rate`` queries a second
  (a margin call only says a ratio got *worse*; the sweep sees it recover).
  The sweep's queries load the venue too; they are not counted as orders.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

__all__ = ["Shock", "parse_shock", "parse_mix", "add_arguments", "run_from_args", "main"]

TICK_S = 0.005  # the scheduler's period: one frame per session per tick, at most


# ----------------------------------------------------------------- options


@dataclass(frozen=True)
class Shock:
    """``BTC:-30%@20s``: move BTC's index by -30% at 20 s into the run."""

    asset: str
    pct: Decimal
    at: float

    def __str__(self) -> str:
        return f"{self.asset}:{self.pct:+}%@{self.at:g}s"


_SHOCK = re.compile(r"^([A-Za-z0-9]+):([+-]?\d+(?:\.\d+)?)%@(\d+(?:\.\d+)?)s?$")


def parse_shock(text: str) -> Shock:
    """``ASSET:[+-]PCT%@SECONDSs`` -> Shock. Raises ValueError."""
    mt = _SHOCK.match(text.strip())
    if not mt:
        raise ValueError(f"shock {text!r}: expected ASSET:PCT%@SECONDS, e.g. BTC:-30%@20s")
    pct = Decimal(mt.group(2))
    if not -100 < pct <= 10_000:
        raise ValueError(f"shock {text!r}: the move must be above -100%")
    return Shock(mt.group(1).upper(), pct, float(mt.group(3)))


def parse_mix(text: str) -> tuple[float, float, float]:
    """``limit=60,market=15,cancel=25`` (or ``60/15/25``) -> fractions summing to 1."""
    parts: dict[str, float] = {}
    if "=" in text:
        for item in text.split(","):
            k, _, v = item.partition("=")
            parts[k.strip().lower()] = float(v.strip().rstrip("%"))
    else:
        vals = [float(v.rstrip("%")) for v in text.split("/")]
        if len(vals) != 3:
            raise ValueError(f"mix {text!r}: expected LIMIT/MARKET/CANCEL percentages")
        parts = dict(zip(("limit", "market", "cancel"), vals))
    if set(parts) - {"limit", "market", "cancel"}:
        raise ValueError(f"mix {text!r}: only limit, market and cancel")
    lim, mkt, can = (parts.get(k, 0.0) for k in ("limit", "market", "cancel"))
    total = lim + mkt + can
    if min(lim, mkt, can) < 0 or total <= 0 or lim + mkt <= 0:
        raise ValueError(f"mix {text!r}: percentages must be >= 0 with some new orders")
    return lim / total, mkt / total, can / total


def _mix_text(text: str) -> str:
    parse_mix(text)  # checked now, parsed again where it is used
    return text


def _arg(parse):
    """An argparse ``type`` whose ValueError message reaches the user."""
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = parse.__name__
    return convert


def add_arguments(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``exchange-sim load`` options (shared by the CLI and ``python -m clients.loadgen``)."""
    ap.add_argument("--accounts", type=int, default=1000, help="accounts to open and fund (default %(default)s)")
    ap.add_argument("--first-account", type=int, default=100_000, help="first account number (default %(default)s)")
    ap.add_argument("--equity", default="10000", help="USDT deposited into each account (default %(default)s)")
    ap.add_argument("--rate", type=float, default=2000.0, help="target orders per second (default %(default)s)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load (default %(default)s)")
    ap.add_argument("--max-orders", type=int, help="stop after sending this many orders (default: rate x duration)")
    ap.add_argument("--mix", default="limit=60,market=15,cancel=25", type=_arg(_mix_text),
                    help="order mix in percent, limit/market/cancel (default %(default)s)")
    ap.add_argument("--leverage", type=float, default=5.0,
                    help="each account's target position / equity (default %(default)s)")
    ap.add_argument("--symbols", help="comma-separated instruments (default: every instrument)")
    ap.add_argument("--shock", action="append", default=[], type=_arg(parse_shock), metavar="ASSET:PCT%@Ts",
                    help="move an index at a time into the run, e.g. BTC:-30%%@20s (repeatable)")
    ap.add_argument("--seed", type=int, default=1, help="random seed of the order flow (default %(default)s)")
    ap.add_argument("--sessions", type=int, help="admin sessions to spread the load over (default: by the rate limit)")
    ap.add_argument("--window", type=int, default=64, help="frames in flight per session (default %(default)s)")
    ap.add_argument("--sweep-rate", type=float, default=500.0,
                    help="QueryAccount margin checks per second, round-robin over the accounts (default %(default)s)")
    ap.add_argument("--config", help="TOML config: endpoints, admin key, warning ratio; --spawn serves it")
    ap.add_argument("--orders", help="the venue's orders endpoint (default: from the config)")
    ap.add_argument("--market-data", help="the venue's market-data endpoint (default: from the config)")
    ap.add_argument("--admin-key", help="admin key (default: from the config)")
    ap.add_argument("--server-key", help="the server's CURVE public key, if it uses CURVE")
    ap.add_argument("--spawn", action="store_true",
                    help="start exchange-sim serve in a subprocess on free loopback ports, and stop it at the end")
    ap.add_argument("--report", help="write the JSON report here instead of stdout")
    ap.add_argument("--progress-every", type=float,
                    help="seconds between progress updates (default 0.25 on a terminal, 2 otherwise)")
    return ap


# ------------------------------------------------------------ the server


class SpawnedServer:
    """``exchange-sim serve`` in its own process group (Ctrl-C reaches only
    us: we stop it after the last reply), on ports the kernel picks."""

    def __init__(self, config_path: str | None, lifetime: float):
        self.dir = tempfile.TemporaryDirectory(prefix="exchange-sim-load-")
        d = Path(self.dir.name)
        self.out_path, self.log_path = d / "serve.out", d / "serve.log"
        cmd = [sys.executable, "-m", "exchange_sim.cli", "serve", "--orders", "tcp://127.0.0.1:*",
               "--market-data", "tcp://127.0.0.1:*", "--duration", str(lifetime)]
        if config_path:
            cmd += ["--config", config_path]
        with open(self.out_path, "w") as out, open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=log, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 30
        while "ready" not in (lines := self.out_path.read_text().splitlines()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise OSError("the spawned server did not start:\n" + self.out_path.read_text()
                              + self.log_path.read_text()[-2000:])
            time.sleep(0.02)
        eps = {ln.split(":", 1)[0]: ln.split(None, 1)[1] for ln in lines if ln.startswith(("orders:", "market-data:"))}
        self.orders, self.market_data = eps["orders"], eps["market-data"]

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.dir.cleanup()
        return self.proc.returncode


# ------------------------------------------------------------ order flow


class Resting:
    """Order ids the generator saw resting: add, discard, pop a random one, all O(1)."""

    def __init__(self):
        self.ids: list[int] = []
        self.accounts: list[int] = []
        self.pos: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, oid: int, account: int) -> None:
        if oid not in self.pos:
            self.pos[oid] = len(self.ids)
            self.ids.append(oid)
            self.accounts.append(account)

    def discard(self, oid: int) -> None:
        i = self.pos.pop(oid, None)
        if i is None:
            return
        last_id, last_acct = self.ids.pop(), self.accounts.pop()
        if i < len(self.ids):  # move the last one into the hole
            self.ids[i], self.accounts[i] = last_id, last_acct
            self.pos[last_id] = i

    def pop_random(self, rng: random.Random) -> tuple[int, int]:
        i = rng.randrange(len(self.ids))
        oid, acct = self.ids[i], self.accounts[i]
        self.discard(oid)
        return oid, acct


class Flow:
    """Seeded order commands (venue units: ticks, lots) for the accounts."""

    LIMIT, MARKET, CANCEL = 0, 1, 2

    def __init__(self, m, markets, symbols: list[str], marks: dict[str, int], first: int, n: int,
                 equity: Decimal, leverage: float, mix: tuple[float, float, float], seed: int):
        self.m = m
        self.rng = random.Random(seed)
        self.first, self.n = first, n
        self.symbols = symbols
        self.marks = marks  # ticks, kept current by the generator
        self.ins = {s: markets[s] for s in symbols}
        self.sym_of = [symbols[i % len(symbols)] for i in range(n)]
        self.pos = [0] * n  # lots, from fills
        self.target = []  # lots, signed
        self.min_lots = {}
        for s in symbols:
            ins = self.ins[s]
            price = marks[s] * ins.tick_size
            self.min_lots[s] = max(1, math.ceil(ins.min_notional / (price * ins.lot_size)) + 1)
        for i in range(n):
            s = self.sym_of[i]
            ins = self.ins[s]
            lots = float(equity) * leverage / float(marks[s] * ins.tick_size * ins.lot_size)
            direction = 1 if self.rng.random() < 0.5 else -1
            self.target.append(direction * max(self.min_lots[s], int(lots * self.rng.uniform(0.7, 1.3))))
        self.p_limit = mix[0]
        self.p_market = mix[0] + mix[1]
        self.resting = Resting()

    def make(self, count: int) -> tuple[list, list[int]]:
        """``count`` commands and their kinds."""
        m, rng = self.m, self.rng
        rand, randrange, uniform = rng.random, rng.randrange, rng.uniform
        cmds, kinds = [], []
        for _ in range(count):
            r = rand()
            if r >= self.p_market and self.resting:
                oid, acct = self.resting.pop_random(rng)
                cmds.append(m.CancelOrder(account=acct, order_id=oid))
                kinds.append(self.CANCEL)
                continue
            i = randrange(self.n)
            sym = self.sym_of[i]
            target, pos = self.target[i], self.pos[i]
            toward = 1 if target > 0 else -1
            # lean toward the target until there, then away: hover near it
            reached = pos * toward >= abs(target)
            sign = toward if (rand() < 0.7) != reached else -toward
            side = m.Side.BUY if sign > 0 else m.Side.SELL
            qty = max(self.min_lots[sym], int(abs(target) * uniform(0.1, 0.5)))
            if r < self.p_limit or not r < self.p_market:  # (cancel with nothing to cancel: a limit)
                mark = self.marks[sym]
                away = uniform(-0.001, 0.004)  # < 0: through the mark, it trades at once
                price = max(1, int(mark * (1 - away)) if sign > 0 else int(mark * (1 + away)) + 1)
                cmds.append(m.NewOrder(account=self.first + i, symbol=sym, side=side, qty=qty, price=price))
                kinds.append(self.LIMIT)
            else:
                cmds.append(m.NewOrder(account=self.first + i, symbol=sym, side=side, qty=qty,
                                       type=m.OrderType.MARKET))
                kinds.append(self.MARKET)
        return cmds, kinds


# ------------------------------------------------------------ figures


class Figures:
    """What the generator counts (see the module docstring for each figure)."""

    def __init__(self, first: int, n: int, warning: float):
        self.first, self.n, self.warning = first, n, warning
        self.sent = self.acked = self.accepted = self.rejected = 0
        self.by_kind = Counter()
        self.rejects: Counter = Counter()
        self.fills = self.trades = self.liq_fills = 0
        self.liquidations = 0
        self.liquidated: set[int] = set()
        self.takeovers = self.adl = self.bankruptcies = 0
        self.notices = 0
        self.margin_calls: Counter = Counter()
        self.lat: list[tuple[float, int]] = []  # (seconds, orders) per frame
        self.ratio: dict[int, float] = {}
        self.below: set[int] = set()
        self.swept = 0
        self.frames = 0
        self.timeouts = 0

    def set_ratio(self, account: int, ratio: float | None) -> None:
        if not 0 <= account - self.first < self.n:
            return
        if ratio is None:
            self.ratio.pop(account, None)
            self.below.discard(account)
            return
        self.ratio[account] = ratio
        if ratio < self.warning:
            self.below.add(account)
        else:
            self.below.discard(account)


def percentiles(samples: list[tuple[float, int]], ps=(50, 90, 99)) -> dict:
    """Order-weighted percentiles of per-frame latencies, in ms."""
    total = sum(n for _, n in samples)
    if not total:
        return {f"p{p}": None for p in ps} | {"max": None}
    xs = sorted(samples)
    out = {}
    for p in ps:
        want, acc = p / 100 * total, 0
        for lat, n in xs:
            acc += n
            if acc >= want:
                out[f"p{p}"] = round(lat * 1000, 2)
                break
    out["max"] = round(xs[-1][0] * 1000, 2)
    return out


# ------------------------------------------------------------ the run


class LoadGenerator:
    def __init__(self, args: argparse.Namespace, orders: str, market_data: str, admin_key: str, cfg, spawned: bool):
        self.a = args
        self.orders, self.market_data, self.admin_key = orders, market_data, admin_key
        self.cfg = cfg
        self.spawned = spawned
        self.mix = parse_mix(args.mix)
        self.stop_reason = ""
        self.fig = Figures(args.first_account, args.accounts, cfg.risk.warning_ratio)
        self.shocks_done: list[dict] = []
        self.tty = sys.stderr.isatty()
        self.progress_every = args.progress_every or (0.25 if self.tty else 2.0)

    # -- events --------------------------------------------------------------

    def absorb(self, kinds: list[int] | None, results: list[list]) -> None:
        """Count what a frame's replies say; keep the flow's view current."""
        m, fig, flow = self.m, self.fig, self.flow
        first, n = flow.first, flow.n
        resting, pos = flow.resting, flow.pos
        Rejected, Fill, OrderAccepted, OrderCancelled = m.Rejected, m.Fill, m.OrderAccepted, m.OrderCancelled
        for k, res in enumerate(results):
            head = res[0] if res else None
            new_oid = None
            if kinds is not None:
                if type(head) is Rejected:
                    fig.rejected += 1
                    fig.rejects[str(head.reason)] += 1
                else:
                    fig.accepted += 1
                    if type(head) is OrderAccepted and kinds[k] == Flow.LIMIT:
                        new_oid = head.order_id
            for ev in res:
                t = type(ev)
                if t is Fill:
                    fig.fills += 1
                    if ev.liquidation:
                        fig.liq_fills += 1
                    if ev.remaining == 0:
                        resting.discard(ev.order_id)
                        if ev.order_id == new_oid:
                            new_oid = None
                    if 0 <= ev.account - first < n:
                        pos[ev.account - first] = ev.position
                elif t is OrderCancelled:
                    resting.discard(ev.order_id)
                    if ev.order_id == new_oid:
                        new_oid = None
                elif t is m.Trade:
                    fig.trades += 1
                elif t is m.AccountUpdate:
                    fig.set_ratio(ev.account, ev.margin_ratio)
                    if 0 <= ev.account - first < n:
                        pos[ev.account - first] = ev.positions[0].qty if ev.positions else 0
                elif t is m.MarkPrice:
                    if ev.symbol in flow.marks:
                        flow.marks[ev.symbol] = ev.mark
                elif t is m.MarginCall:
                    fig.margin_calls[ev.level] += 1
                    fig.set_ratio(ev.account, ev.margin_ratio)
                elif t is m.LiquidationStarted:
                    fig.liquidations += 1
                    fig.liquidated.add(ev.account)
                elif t is m.InsuranceTakeover:
                    fig.takeovers += 1
                elif t is m.AutoDeleverage:
                    fig.adl += 1
                elif t is m.BankruptcyCovered:
                    fig.bankruptcies += 1
            if new_oid is not None:
                resting.add(new_oid, head.account)

    # -- tasks ---------------------------------------------------------------

    async def send_orders(self, client, cmds: list, kinds: list[int], sem: asyncio.Semaphore) -> None:
        fig = self.fig
        fig.sent += len(cmds)
        fig.frames += 1
        for k in kinds:
            fig.by_kind[k] += 1
        t0 = time.perf_counter()
        try:
            results = await client.batch(cmds, timeout=10.0)
        except self.errors.RequestTimeout:
            fig.timeouts += 1
            self.stop("no reply within 10 s: is the venue still there?")
            return
        except self.errors.ExchangeError as exc:  # the whole frame refused (e.g. not logged in)
            reason = exc.reason.value if exc.reason else type(exc).__name__
            fig.acked += len(cmds)
            fig.rejected += len(cmds)
            fig.rejects[reason] += len(cmds)
            return
        finally:
            sem.release()
        fig.lat.append((time.perf_counter() - t0, len(cmds)))
        fig.acked += len(cmds)
        self.absorb(kinds, results)

    async def schedule(self, t0: float) -> None:
        """Open loop: ``rate x elapsed`` orders, a frame per session per tick."""
        a = self.a
        limit = a.max_orders if a.max_orders is not None else math.inf
        planned = 0
        turn = 0
        tasks = set()
        sems = [asyncio.Semaphore(a.window) for _ in self.clients]
        while not self.stopping.is_set():
            el = time.monotonic() - t0
            if el >= a.duration:
                self.stop("duration")
                break
            due = min(int(a.rate * el), limit) - planned
            for _ in range(len(self.clients)):
                if due <= 0:
                    break
                i = turn % len(self.clients)
                turn += 1
                if sems[i].locked():
                    continue  # this session's window is full: the schedule falls behind
                await sems[i].acquire()
                n = min(due, self.max_batch)
                cmds, kinds = self.flow.make(n)
                planned += n
                due -= n
                task = asyncio.create_task(self.send_orders(self.clients[i], cmds, kinds, sems[i]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            self.behind = max(0, min(int(a.rate * el), limit) - planned)
            if planned >= limit:
                self.stop("max orders")
                break
            await asyncio.sleep(TICK_S)
        if tasks:  # the last replies, briefly: a report must not wait for a dead venue
            await asyncio.wait(tasks, timeout=5.0)
        for t in tasks:
            t.cancel()

    async def shocks(self, t0: float) -> None:
        for s in sorted(self.a.shock, key=lambda s: s.at):
            wait = t0 + s.at - time.monotonic()
            if wait > 0:
                try:
                    await asyncio.wait_for(self.stopping.wait(), wait)
                    return  # stopped first
                except asyncio.TimeoutError:
                    pass
            applied = time.monotonic() - t0
            try:
                events = await self.clients[0].shock_price(s.asset, s.pct)
            except self.errors.ExchangeError as exc:
                self.shocks_done.append({"shock": str(s), "at_s": round(applied, 3), "error": str(exc)})
                continue
            self.absorb(None, [events])
            liquidations = sum(1 for e in events if type(e) is self.m.LiquidationStarted)
            self.shocks_done.append({
                "shock": str(s), "at_s": round(applied, 3),
                "margin_calls": sum(1 for e in events if type(e) is self.m.MarginCall),
                "liquidations": liquidations,  # started by the shock itself; cascades go on in later replies
            })
            self.say_line(f"shock {s} applied at {applied:.1f}s: {liquidations} liquidations")

    async def sweep(self) -> None:
        """Rolling QueryAccount over every account: ratios that recovered show up too."""
        a, m = self.a, self.m
        if a.sweep_rate <= 0:
            return
        i = 0
        step = 0.5
        while not self.stopping.is_set():
            n = max(1, min(a.accounts, int(a.sweep_rate * step)))
            ids = [a.first_account + (i + k) % a.accounts for k in range(n)]
            i = (i + n) % a.accounts
            for k in range(0, len(ids), self.max_batch):
                try:
                    res = await self.clients[0].batch([m.QueryAccount(account=x) for x in ids[k:k + self.max_batch]],
                                                      timeout=10.0)
                except self.errors.ExchangeError:
                    break
                for evs in res:
                    if evs and type(evs[0]) is m.AccountUpdate:
                        self.fig.set_ratio(evs[0].account, evs[0].margin_ratio)
                        self.fig.swept += 1
            try:
                await asyncio.wait_for(self.stopping.wait(), step)
            except asyncio.TimeoutError:
                pass

    async def public(self) -> None:
        """Marks (a feed may move them) and liquidation notices from the PUB socket."""
        import zmq
        import zmq.asyncio

        from clients._core import curve
        from protocol.session import decode_market

        sub = zmq.asyncio.Context.instance().socket(zmq.SUB)
        sub.linger = 0
        if self.a.server_key:
            curve(sub, self.a.server_key)
        for s in self.flow.marks:
            for ch in ("mark", "liquidation"):
                sub.setsockopt(zmq.SUBSCRIBE, f"{s}.{ch}\x00".encode())
        sub.connect(self.market_data)
        try:
            while True:
                ev = decode_market(await sub.recv())
                if type(ev) is self.m.LiquidationNotice:
                    self.fig.notices += 1
                elif type(ev) is self.m.MarkPrice and ev.symbol in self.flow.marks:
                    self.flow.marks[ev.symbol] = ev.mark
        except asyncio.CancelledError:
            pass
        finally:
            sub.close(linger=0)

    async def progress(self, t0: float) -> None:
        last_t, last_acked, last_lat = t0, 0, 0
        while not self.stopping.is_set():
            try:
                await asyncio.wait_for(self.stopping.wait(), self.progress_every)
            except asyncio.TimeoutError:
                pass
            now = time.monotonic()
            fig = self.fig
            rate = (fig.acked - last_acked) / max(1e-9, now - last_t)
            window = percentiles(fig.lat[last_lat:])
            last_t, last_acked, last_lat = now, fig.acked, len(fig.lat)
            self.show(now - t0, rate, window)

    # -- output --------------------------------------------------------------

    def line(self, elapsed: float, rate: float, lat: dict) -> str:
        fig = self.fig
        top = ", ".join(f"{r} {c:,}" for r, c in fig.rejects.most_common(3))
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        return (f"{elapsed:5.1f}s/{self.a.duration:g}s  {rate:,.0f} orders/s (target {self.a.rate:,.0f})  "
                f"ack p50 {fmt(lat['p50'])} p99 {fmt(lat['p99'])} ms  fills {fig.fills:,}  "
                f"liquidations {fig.liquidations:,}  below warning {len(fig.below):,}/{self.a.accounts:,}  "
                f"rejects {fig.rejected:,}{f' [{top}]' if top else ''}")

    def show(self, elapsed: float, rate: float, lat: dict) -> None:
        text = self.line(elapsed, rate, lat)
        if self.tty:  # one line, rewritten in place: never wider than the terminal
            width = shutil.get_terminal_size().columns - 1
            sys.stderr.write("\r" + text[:width] + "\x1b[K")
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def say_line(self, text: str) -> None:
        sys.stderr.write(("\r\x1b[K" if self.tty else "") + text + "\n")
        sys.stderr.flush()

    def stop(self, reason: str) -> None:
        if not self.stopping.is_set():
            self.stop_reason = reason
            self.stopping.set()

    # -- main ----------------------------------------------------------------

    async def run(self) -> dict:
        from clients import AsyncClient, errors, models
        from protocol import messages

        self.m, self.errors = messages, errors
        a = self.a
        self.stopping = asyncio.Event()
        self.behind = 0
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop, "interrupted" if sig == signal.SIGINT else "terminated")
        setup_t0 = time.monotonic()
        first = await AsyncClient.connect(self.orders, 0, self.admin_key, server_key=a.server_key)
        if not first.admin:
            raise ValueError("the --admin-key is not the venue's admin key")
        login = first.session
        per_session = max(1, login.rate_limit_per_s // 2)
        n_sessions = a.sessions or max(1, math.ceil(a.rate / per_session))
        self.clients = [first] + [await AsyncClient.connect(self.orders, 0, self.admin_key, server_key=a.server_key)
                                  for _ in range(n_sessions - 1)]
        self.max_batch = max(1, min(login.max_batch, 500))
        try:
            markets = first.markets
            (info,) = await first.call(messages.QueryInstruments())
            index = {x.name: x.index_price for x in info.assets if x.index_price}
            for shock in a.shock:
                if shock.asset not in index:
                    raise ValueError(f"shock {shock}: the venue has no index price for {shock.asset}")
            symbols = a.symbols.split(",") if a.symbols else sorted(markets.instruments)
            marks = {}
            for s in symbols:
                ins = markets[s]  # InvalidOrder for an unknown symbol
                if ins.underlying not in index:
                    raise ValueError(f"{s}: {ins.underlying} has no index price")
                marks[s] = round(models.Markets.index_usd(index[ins.underlying]) / ins.tick_size)
            equity = Decimal(a.equity)
            self.flow = Flow(messages, markets, symbols, marks, a.first_account, a.accounts, equity, a.leverage,
                             self.mix, a.seed)
            existing = await self.open_accounts(first, markets.minor("USDT", equity))
            setup_s = time.monotonic() - setup_t0
            self.say_line(f"load: {a.accounts:,} accounts ready in {setup_s:.1f}s ({existing:,} existed); "
                          f"{a.rate:,.0f} orders/s for {a.duration:g}s over {n_sessions} admin session(s), "
                          f"rate limit {login.rate_limit_per_s:,}/s each; symbols {', '.join(symbols)}")
            t0 = time.monotonic()
            tasks = [asyncio.create_task(c) for c in (self.shocks(t0), self.sweep(), self.public(), self.progress(t0))]
            await self.schedule(t0)
            elapsed = time.monotonic() - t0
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.tty:
                sys.stderr.write("\n")
            return self.report(elapsed, setup_s, symbols, n_sessions, login.rate_limit_per_s)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            for c in self.clients:
                await c.close()

    async def open_accounts(self, admin, amount: int) -> int:
        """OpenAccount + Deposit for every account, pipelined Batch frames. Returns how many existed."""
        m, a = self.m, self.a
        ids = range(a.first_account, a.first_account + a.accounts)
        cmds = [c for x in ids for c in (m.OpenAccount(account=x), m.Deposit(account=x, asset="USDT", amount=amount))]
        size = self.max_batch - self.max_batch % 2
        results = await asyncio.gather(*[admin.batch(cmds[k:k + size], timeout=60.0)
                                         for k in range(0, len(cmds), size)])
        existed = 0
        for res in results:
            for evs in res:
                if evs and type(evs[0]) is m.Rejected:
                    if evs[0].reason == m.RejectReason.ACCOUNT_EXISTS:
                        existed += 1
                    else:
                        raise ValueError(f"cannot set up the accounts: {evs[0].reason}: {evs[0].message}")
        return existed

    def report(self, elapsed: float, setup_s: float, symbols: list[str], sessions: int, rate_limit: int) -> dict:
        a, fig = self.a, self.fig
        lim, mkt, can = self.mix
        return {
            "config": {
                "accounts": a.accounts, "first_account": a.first_account, "equity_usdt": a.equity,
                "rate": a.rate, "duration_s": a.duration, "max_orders": a.max_orders,
                "mix_pct": {"limit": round(lim * 100, 2), "market": round(mkt * 100, 2), "cancel": round(can * 100, 2)},
                "leverage": a.leverage, "symbols": symbols, "shocks": [str(s) for s in a.shock], "seed": a.seed,
                "orders_endpoint": self.orders, "spawned_server": self.spawned, "admin_sessions": sessions,
                "session_rate_limit_per_s": rate_limit, "window": a.window, "max_batch": self.max_batch,
            },
            "stopped_by": self.stop_reason,
            "setup_s": round(setup_s, 3),
            "elapsed_s": round(elapsed, 3),
            "orders": {
                "sent": fig.sent, "acked": fig.acked, "accepted": fig.accepted, "rejected": fig.rejected,
                "unanswered": fig.sent - fig.acked, "limit": fig.by_kind[Flow.LIMIT],
                "market": fig.by_kind[Flow.MARKET], "cancel": fig.by_kind[Flow.CANCEL], "frames": fig.frames,
                "behind_schedule": self.behind,
            },
            "orders_per_s": round(fig.acked / elapsed, 1) if elapsed > 0 else 0.0,
            "ack_ms": percentiles(fig.lat) | {"measured": "per Batch frame, send to reply, in the generator"},
            "fills": fig.fills,
            "trades": fig.trades,
            "rejects": dict(fig.rejects.most_common()),
            "liquidations": {
                "started": fig.liquidations, "accounts": len(fig.liquidated), "liquidation_fills": fig.liq_fills,
                "insurance_takeovers": fig.takeovers, "auto_deleverages": fig.adl,
                "bankruptcies_covered": fig.bankruptcies, "public_notices": fig.notices,
            },
            "margin": {
                "warning_ratio": fig.warning, "below_warning": len(fig.below), "ratios_known": len(fig.ratio),
                "margin_calls": dict(fig.margin_calls),
                "method": "latest ratio per account from AccountUpdate/MarginCall events in replies and a "
                          f"rolling QueryAccount sweep at {a.sweep_rate:g}/s ({fig.swept:,} queries)",
            },
            "shocks": self.shocks_done,
        }


# ------------------------------------------------------------ entry points


def run_from_args(args: argparse.Namespace) -> int:
    """``exchange-sim load``: validate, (spawn,) run, report. Exit status."""
    from exchange_sim import config as config_mod

    if args.accounts < 1 or args.accounts > 1_000_000:
        raise ValueError("--accounts must be 1..1,000,000")
    if args.rate <= 0 or not 0 < args.duration <= 86_400:
        raise ValueError("--rate must be > 0 and --duration in (0, 86400] s")
    if args.window < 1:
        raise ValueError("--window must be >= 1")
    parse_mix(args.mix)
    cfg = config_mod.load(args.config) if args.config else config_mod.default()
    taken = {x.account for x in cfg.server.accounts} | {cfg.liquidation.insurance_account}
    if any(args.first_account <= x < args.first_account + args.accounts for x in taken):
        raise ValueError(f"accounts {args.first_account}..{args.first_account + args.accounts - 1} overlap the "
                         "demo or insurance accounts: choose another --first-account")
    server = None
    if args.spawn:
        server = SpawnedServer(args.config, lifetime=args.duration + 600)
        orders, market_data = server.orders, server.market_data
    else:
        orders = args.orders or cfg.server.orders_endpoint
        market_data = args.market_data or cfg.server.market_data_endpoint
    from clients.errors import ExchangeError

    gen = LoadGenerator(args, orders, market_data, args.admin_key or cfg.server.admin_key, cfg, server is not None)
    try:
        report = asyncio.run(gen.run())
    except TimeoutError as exc:
        raise OSError(f"cannot reach the venue at {orders}: {exc} (is `exchange-sim serve` running?)") from None
    except ExchangeError as exc:
        raise ValueError(f"the venue refused: {exc}") from None
    finally:
        if server is not None:
            server.stop()
    text = json.dumps(report, indent=2)
    if args.report:
        Path(args.report).write_text(text + "\n", encoding="utf-8")
        sys.stderr.write(f"report written to {args.report}\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = add_arguments(argparse.ArgumentParser(prog="exchange-sim load", description=__doc__,
                                               formatter_class=argparse.RawDescriptionHelpFormatter))
    try:
        return run_from_args(ap.parse_args(argv))
    except (ValueError, OSError) as exc:
        print(f"exchange-sim load: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
