"""One idempotency window (ADR 0008): ``venue.client_id_memory`` is the
window the server's resend store uses, the one LoginOk announces and the one
a snapshot keeps."""

import msgspec
import pytest
from venue_helpers import BTC, BTC_MARK, fund, make_venue, rest

from exchange_sim import config as config_mod
from exchange_sim import snapshot as snap_mod
from exchange_sim.server.loop import Server
from protocol.messages import CancelAll, NewOrder, Rejected, RejectReason, Side

P = BTC_MARK  # BTC-PERP ticks


def test_the_server_store_uses_the_venue_window():
    cfg = config_mod.default()
    assert cfg.venue.client_id_memory == 10_000
    cfg = msgspec.structs.replace(cfg, venue=msgspec.structs.replace(cfg.venue, client_id_memory=42))
    assert Server(cfg).idem.window == 42


def test_a_separate_server_window_setting_is_refused_not_ignored():
    with pytest.raises(ValueError, match="unknown field `idempotency_window`"):
        config_mod.loads("[server]\nidempotency_window = 5\n")


def test_a_snapshot_restored_under_a_smaller_window_keeps_the_newest_ids():
    ven = make_venue(client_id_memory=5)
    fund(ven, 1, USDT=1_000_000)
    for i in range(5):
        rest(ven, 1, "buy", 1, P - 10 - i, client_order_id=f"c{i}")
    ven.apply(CancelAll(account=1))
    state = snap_mod.decode(snap_mod.encode(snap_mod.capture(ven)))
    cfg = msgspec.structs.replace(ven.config, venue=msgspec.structs.replace(ven.config.venue, client_id_memory=3))
    small = snap_mod.restore(cfg, state)
    assert list(small.accounts[1].client_ids) == ["c2", "c3", "c4"]
    small._check()  # the memory's bound holds
    for cid in ("c2", "c3", "c4"):
        (ev,) = small.apply(NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=1, price=P - 30, client_order_id=cid))
        assert type(ev) is Rejected and ev.reason == RejectReason.DUPLICATE_CLIENT_ORDER_ID
    rest(small, 1, "buy", 1, P - 30, client_order_id="c0")  # beyond the window: a new order
