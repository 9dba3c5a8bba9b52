"""BookMirror against the venue's own book, over real sockets.

- 10,000 random operations by two accounts (limit, IOC, market, cancel,
  amend; crossing and resting) with the mirror compared to a server
  snapshot at every checkpoint, and a forced gap: a lossy link between the
  PUB socket and the mirror drops five messages, the mirror notices the
  sequence jump and re-syncs from a snapshot.
- A lost last delta before a quiet spell is revealed by the market-data
  heartbeat (``BookHeartbeat.seq`` ahead of the mirror).
- A subscriber that stops reading never slows matching; once it reads
  again it sees the gap (PUB dropped past its high-water mark) and repairs.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
import zmq

from clients import BookMirror, Client
from integration_helpers import KEYS
from units import BTC_MARK as MARK  # ticks: $60,000.0
from protocol import messages as m
from protocol.messages import OrderAccepted, OrderType, Side, TimeInForce

SYM = "BTC-PERP"


class LossyLink(threading.Thread):
    """SUB from the server, PUB to the mirror; drops the next ``n`` frames on demand."""

    def __init__(self, ctx: zmq.Context, upstream: str):
        super().__init__(daemon=True)
        self.ctx = ctx
        self.upstream = upstream
        self.to_drop = 0
        self.dropped = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.endpoint = ""

    def drop_next(self, n: int, only: bytes = b"") -> None:
        with self.lock:
            self.to_drop = n
            self.only = only

    def run(self) -> None:
        sub = self.ctx.socket(zmq.SUB)
        pub = self.ctx.socket(zmq.PUB)
        sub.linger = pub.linger = 0
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.rcvhwm = pub.sndhwm = 0
        sub.connect(self.upstream)
        pub.bind("tcp://127.0.0.1:*")
        self.endpoint = pub.last_endpoint.decode()
        self.ready.set()
        try:
            while not self.stopping.is_set():
                if not sub.poll(20):
                    continue
                while True:
                    try:
                        frame = sub.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    with self.lock:
                        if self.to_drop and frame.startswith(getattr(self, "only", b"")):
                            self.to_drop -= 1
                            self.dropped += 1
                            continue
                    pub.send(frame)
        finally:
            sub.close()
            pub.close()


def _check_equal(client: Client, mirror: BookMirror) -> int:
    (snap,) = client.call(m.QueryBook(symbol=SYM))
    mirror.wait_seq(SYM, snap.seq, timeout=10.0)
    assert mirror.seq(SYM) == snap.seq
    bids, asks = mirror.levels(SYM)
    assert bids == snap.bids and asks == snap.asks
    return snap.seq


def _random_op(rng: random.Random, account: int, open_ids: list[int]):
    r = rng.random()
    if open_ids and (r < 0.25 or len(open_ids) > 150):
        return m.CancelOrder(account=account, order_id=open_ids.pop(rng.randrange(len(open_ids))))
    if open_ids and r < 0.35:
        oid = rng.choice(open_ids)
        if rng.random() < 0.5:
            return m.AmendOrder(account=account, order_id=oid, qty=rng.randint(1, 20))
        return m.AmendOrder(account=account, order_id=oid, price=MARK + rng.randint(-60, 60))
    side = rng.choice((Side.BUY, Side.SELL))
    qty = rng.randint(1, 40)
    if r < 0.40:
        return m.NewOrder(account=account, symbol=SYM, side=side, qty=qty, type=OrderType.MARKET)
    # mostly passive, sometimes through the touch
    offset = rng.randint(1, 80) if rng.random() < 0.8 else -rng.randint(0, 10)
    price = MARK - offset if side is Side.BUY else MARK + offset
    tif = TimeInForce.IOC if r < 0.45 else TimeInForce.GTC
    return m.NewOrder(account=account, symbol=SYM, side=side, qty=qty, price=price, tif=tif)


def _run_ops(clients: dict[int, Client], rng: random.Random, n: int, open_ids: dict[int, list[int]]) -> None:
    """``n`` random ops, pipelined in chunks; tracks each account's resting orders."""
    done = 0
    while done < n:
        chunk = min(250, n - done)
        sent = []
        for _ in range(chunk):
            acct = rng.choice((1, 2))
            cmd = _random_op(rng, acct, open_ids[acct])
            sent.append((acct, clients[acct].submit(cmd)))
        for acct, rid in sent:
            rep = clients[acct].result(rid, timeout=10.0)
            ev = rep.events[0] if rep.events else None
            if type(ev) is OrderAccepted and ev.tif is TimeInForce.GTC and ev.type is OrderType.LIMIT:
                if not any(type(e) is m.Fill and e.order_id == ev.order_id and e.remaining == 0 for e in rep.events):
                    open_ids[acct].append(ev.order_id)
        done += chunk


@pytest.mark.deadline(150)
def test_mirror_tracks_10000_ops_and_repairs_a_forced_gap(serve, ctx):
    srv = serve(venue={"max_open_orders": 400})
    link = LossyLink(ctx, srv.market_data)
    link.start()
    assert link.ready.wait(5)
    time.sleep(0.3)  # the link's subscription reaches the server
    clients = {a: Client(srv.orders, a, KEYS[a], context=ctx) for a in (1, 2)}
    mirror = BookMirror([SYM], market_data=link.endpoint, orders=srv.orders, context=ctx)
    rng = random.Random(7)
    open_ids: dict[int, list[int]] = {1: [], 2: []}
    try:
        time.sleep(0.2)
        mirror.wait_synced(10.0)
        start_resyncs = mirror.resyncs
        total = 0
        for round_ in range(10):
            if round_ == 5:
                link.drop_next(5, only=SYM.encode() + b".book")  # forced gap
            _run_ops(clients, rng, 1000, open_ids)
            total += 1000
            mirror.poll(0.01)
            seq = _check_equal(clients[1], mirror)
        assert total == 10_000
        assert link.dropped == 5
        assert mirror.resyncs >= start_resyncs + 1  # the gap was seen and repaired
        assert seq > 5000  # the book really moved
        bb, ba = mirror.best_bid(SYM), mirror.best_ask(SYM)
        assert bb is None or ba is None or bb[0] < ba[0]
        for c in clients.values():
            assert len(c.open_orders()) <= 400
    finally:
        mirror.close()
        for c in clients.values():
            c.close()
        link.stopping.set()
        link.join(5)


@pytest.mark.deadline(40)
def test_heartbeat_reveals_a_lost_last_delta(serve, ctx):
    srv = serve(md_heartbeat_ms=100)
    link = LossyLink(ctx, srv.market_data)
    link.start()
    assert link.ready.wait(5)
    time.sleep(0.3)
    mirror = BookMirror([SYM], market_data=link.endpoint, orders=srv.orders, context=ctx)
    c = Client(srv.orders, 1, KEYS[1], context=ctx)
    try:
        mirror.wait_synced(5.0)
        mirror.run_for(0.3)
        before = mirror.resyncs
        link.drop_next(1, only=SYM.encode() + b".book\x00\x85")  # the next BookDelta (a 5-key map), not a heartbeat
        c.buy(SYM, "0.01", "59999.0")  # its delta is lost; then the market is quiet
        deadline = time.monotonic() + 5
        while mirror.resyncs == before and time.monotonic() < deadline:
            mirror.poll(0.05)
        assert mirror.resyncs == before + 1 and link.dropped == 1
        _check_equal(c, mirror)
    finally:
        mirror.close()
        c.close()
        link.stopping.set()
        link.join(5)


@pytest.mark.deadline(90)
def test_slow_subscriber_never_slows_matching(serve, ctx):
    srv = serve(pub_hwm=100, venue={"max_open_orders": 3000})
    c = Client(srv.orders, 1, KEYS[1], context=ctx)
    c2 = Client(srv.orders, 2, KEYS[2], context=ctx)
    mirror = BookMirror([SYM], market_data=srv.market_data, orders=srv.orders, context=ctx, rcvhwm=100)
    stalled = ctx.socket(zmq.SUB)  # subscribes and never reads
    stalled.rcvhwm = 10
    stalled.setsockopt(zmq.SUBSCRIBE, b"")
    stalled.connect(srv.market_data)
    try:
        mirror.wait_synced(5.0)
        before = mirror.resyncs
        rng = random.Random(3)
        t0 = time.monotonic()
        n_batches = 40
        for b in range(n_batches):  # 40 x 500 ops while the mirror does not read
            cmds = []
            for i in range(500):
                acct = 1 + (i % 2)
                side = Side.BUY if acct == 1 else Side.SELL
                px = MARK - rng.randint(1, 100) if side is Side.BUY else MARK + rng.randint(1, 100)
                cmds.append(m.NewOrder(account=acct, symbol=SYM, side=side, qty=rng.randint(1, 9), price=px))
            c.batch([x for x in cmds if x.account == 1])
            c2.batch([x for x in cmds if x.account == 2])
            if b % 5 == 4:
                c.cancel_all(SYM)
                c2.cancel_all(SYM)
        elapsed = time.monotonic() - t0
        assert elapsed < 30  # matching went on at full speed with two stalled readers
        received_before = mirror.messages
        (snap,) = c.call(m.QueryBook(symbol=SYM))
        mirror.wait_seq(SYM, snap.seq, timeout=20.0)
        _check_equal(c, mirror)
        published = snap.seq  # deltas published while it was not reading (plus a few)
        print(f"slow subscriber: {n_batches * 500} ops in {elapsed:.2f}s; mirror got "
              f"{mirror.messages - received_before} of ~{published} deltas, resyncs {mirror.resyncs - before}")
        if mirror.messages - received_before < published - 10:  # PUB dropped some: it must have re-synced
            assert mirror.resyncs > before
    finally:
        stalled.close(linger=0)
        mirror.close()
        c.close()
        c2.close()
