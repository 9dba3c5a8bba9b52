"""Kill the venue with SIGKILL at random points and restart it on the same
data dir: nothing it acknowledged is lost, money is conserved, and the
recovered state is exactly what an uninterrupted replay of the journal gives.
"""

from __future__ import annotations

import os
import random
import signal
import threading

import msgspec
import pytest
from integration_helpers import ADMIN_KEY, KEYS, start_server

from clients import Client
from clients.errors import ExchangeError
from exchange_sim import replay, snapshot
from protocol import messages as m
from protocol.session import Invariants, SnapshotTaken

JOURNAL = {"journal": {"snapshot_every": 300}}


def _drive(sp, rng: random.Random, kill_after_s: float, acked: dict) -> int:
    """Trade until the server dies under us. Records every acknowledged order
    (id -> (account, client id, side, qty, price)). Returns commands acked."""
    admin = Client(sp.orders, 0, ADMIN_KEY, timeout=2.0)
    maker = Client(sp.orders, 1, KEYS[1], timeout=2.0)
    taker = Client(sp.orders, 2, KEYS[2], timeout=2.0)
    student = Client(sp.orders, 4, KEYS[4], timeout=2.0)
    killer = threading.Timer(kill_after_s, lambda: os.kill(sp.proc.pid, signal.SIGKILL))
    killer.start()
    n = 0
    mark = 600_000  # BTC-PERP ticks at the default $60,000
    try:
        for i in range(20_000):  # bounded; the kill ends it far sooner
            who, acct = (maker, 1) if rng.random() < 0.6 else (taker, 2)
            side = rng.choice([m.Side.BUY, m.Side.SELL])
            price = mark + rng.randint(-40, 40) * (1 if acct == 2 else 2)
            cmd = m.NewOrder(account=acct, symbol="BTC-PERP", side=side, qty=rng.randint(1, 30), price=price,
                             client_order_id=f"c{acct}-{i}-{rng.randrange(10**9)}")
            events = who.request(cmd).events
            if events and isinstance(events[0], m.OrderAccepted):
                acked[events[0].order_id] = (acct, cmd.client_order_id, str(side), cmd.qty, price)
            n += 1
            if i % 97 == 0:
                who.request(m.CancelAll(account=acct, symbol="BTC-PERP"))
            if i == 150:
                # the student ($10,000 + 0.5 BTC) buys 3 BTC from the maker, then BTC
                # falls 20%: a $36,000 loss against about $33,000 of equity
                maker.request(m.NewOrder(account=1, symbol="BTC-PERP", side=m.Side.SELL, qty=3_000, price=mark + 50))
                student.request(m.NewOrder(account=4, symbol="BTC-PERP", side=m.Side.BUY, qty=3_000,
                                           price=mark + 50, tif=m.TimeInForce.IOC))
                admin.request(m.ShockPrice(asset="BTC", change_bps=-2000))
                mark = mark * 80 // 100
            if i % 250 == 0:
                admin.request(m.SettleFunding())
    except (ExchangeError, TimeoutError, OSError):
        pass  # the server is gone: whatever was acked above is what counts
    finally:
        killer.cancel()
        for c in (admin, maker, taker, student):
            c.close(logout=False)
    return n


@pytest.mark.deadline(300)
def test_kill_9_at_random_points_loses_nothing_acknowledged(tmp_path):
    data = tmp_path / "data"
    rng = random.Random(20261126)
    acked: dict[int, tuple] = {}
    for attempt in range(3):  # three random kill points, each on top of the last recovery
        sp = start_server(tmp_path, args=("--data-dir", str(data)), sections=JOURNAL)
        done = _drive(sp, rng, kill_after_s=rng.uniform(0.8, 2.5), acked=acked)
        sp.proc.wait(10)
        assert sp.proc.returncode == -signal.SIGKILL, "the server must have died by SIGKILL"
        assert done > 0

    sp = start_server(tmp_path, args=("--data-dir", str(data)), sections=JOURNAL)
    try:
        assert any(line.startswith("recovered seq") for line in sp.banner) or "recovered" in sp.log()
        admin = Client(sp.orders, 0, ADMIN_KEY, timeout=5.0)
        inv = admin.check_invariants()
        assert isinstance(inv, Invariants) and inv.ok, inv.message
        snap = admin.take_snapshot()
        assert isinstance(snap, SnapshotTaken)
        # orders the restarted venue holds open for accounts 1 and 2 were all acknowledged to us
        for acct in (1, 2):
            (oo,) = [e for e in admin.request(m.QueryOpenOrders(account=acct)).events if isinstance(e, m.OpenOrders)]
            for o in oo.orders:
                assert o.order_id in acked and acked[o.order_id][1] == o.client_order_id
        admin.close()
    finally:
        sp.stop()

    # every acknowledged order is in the journal, accepted exactly as acknowledged
    accepted = {}
    final = None
    for rec, events, venue in replay.replay(data, from_start=True, until=snap.seq):
        for ev in events:
            if isinstance(ev, m.OrderAccepted):
                accepted[ev.order_id] = (ev.account, ev.client_order_id, str(ev.side), ev.qty, ev.price)
        final = venue
    missing = {oid for oid in acked if accepted.get(oid) != acked[oid]}
    assert not missing, f"{len(missing)} acknowledged orders are not in the journal as acknowledged"
    # the recovered live state equals an uninterrupted replay of the same journal
    assert final.seq == snap.seq
    assert snapshot.state_hash(final) == snap.state_hash
    final._check()
    liquidated = any(isinstance(ev, m.LiquidationStarted)
                     for _, evs, _ in replay.replay(data, from_start=True, until=snap.seq) for ev in evs)
    assert liquidated, "the run should include the liquidation after the shock"
    assert len(acked) > 300


def _btc_position(client: Client, account: int) -> int:
    (upd,) = [e for e in client.request(m.QueryAccount(account=account)).events if isinstance(e, m.AccountUpdate)]
    return sum(p.qty for p in upd.positions if p.symbol == "BTC-PERP")


@pytest.mark.deadline(120)
@pytest.mark.parametrize("snapshot_first", [False, True], ids=["journal-replay", "from-snapshot"])
def test_resend_after_kill_9_and_restart_is_refused_not_filled_twice(tmp_path, snapshot_first):
    """A client order id outlives the server process. The taker's IOC with
    client id "resend-me" fills 200 lots; the maker rests 200 more at the same
    price, so a second fill would be possible. SIGKILL (no shutdown snapshot),
    restart on the same data dir (the venue rebuilt by replaying the journal,
    or from a snapshot taken after the fill), and the taker resends the very
    same order, as a client that never saw the answer would. The server's
    in-memory idempotency store is empty now, so the venue answers: refused,
    DUPLICATE_CLIENT_ORDER_ID naming the original order; the position is
    still 200 lots and the maker's new ask still rests."""
    data = tmp_path / "data"
    order = m.NewOrder(account=2, symbol="BTC-PERP", side=m.Side.BUY, qty=200, price=600_050,
                       tif=m.TimeInForce.IOC, client_order_id="resend-me")
    ask = m.NewOrder(account=1, symbol="BTC-PERP", side=m.Side.SELL, qty=200, price=600_050,
                     tif=m.TimeInForce.POST_ONLY)
    sp = start_server(tmp_path, args=("--data-dir", str(data)), sections=JOURNAL)
    admin = Client(sp.orders, 0, ADMIN_KEY, timeout=5.0)
    maker = Client(sp.orders, 1, KEYS[1], timeout=5.0)
    taker = Client(sp.orders, 2, KEYS[2], timeout=5.0)
    try:
        assert isinstance(maker.request(ask).events[0], m.OrderAccepted)
        first = taker.request(order)
        accepted = first.events[0]
        assert isinstance(accepted, m.OrderAccepted) and not first.duplicate
        assert sum(e.qty for e in first.events if isinstance(e, m.Fill) and e.account == 2) == 200
        again = taker.request(order)  # same process: the server's store answers with the original reply
        assert again.duplicate and again.events == first.events
        assert _btc_position(taker, 2) == 200
        (second_ask,) = [e for e in maker.request(ask).events if isinstance(e, m.OrderAccepted)]
        if snapshot_first:
            assert isinstance(admin.take_snapshot(), SnapshotTaken)
        os.kill(sp.proc.pid, signal.SIGKILL)
        sp.proc.wait(10)
        assert sp.proc.returncode == -signal.SIGKILL
    finally:
        for c in (admin, maker, taker):
            c.close(logout=False)
        sp.stop()

    sp = start_server(tmp_path, args=("--data-dir", str(data)), sections=JOURNAL)
    try:
        assert "recovered" in " ".join(sp.banner) or "recovered" in sp.log()
        taker = Client(sp.orders, 2, KEYS[2], timeout=5.0)
        admin = Client(sp.orders, 0, ADMIN_KEY, timeout=5.0)
        resent = taker.request(order)
        assert not resent.duplicate
        (rej,) = resent.events
        assert isinstance(rej, m.Rejected) and rej.reason == m.RejectReason.DUPLICATE_CLIENT_ORDER_ID, rej
        assert f"order {accepted.order_id}" in rej.message and rej.client_order_id == "resend-me"
        assert _btc_position(taker, 2) == 200  # not filled twice
        (oo,) = [e for e in admin.request(m.QueryOpenOrders(account=1)).events if isinstance(e, m.OpenOrders)]
        assert [(o.order_id, o.qty - o.filled) for o in oo.orders] == [(second_ask.order_id, 200)]
        assert admin.check_invariants().ok
        # a fresh client order id is a new order, and does fill
        fresh = taker.request(msgspec.structs.replace(order, client_order_id="resend-me-2"))
        assert isinstance(fresh.events[0], m.OrderAccepted) and _btc_position(taker, 2) == 400
        taker.close()
        admin.close()
    finally:
        sp.stop()
