"""The ZeroMQ shell around the venue core: one thread, two sockets.

::

    DEALER clients ──► ROUTER ─┐                      ┌─► PUB ──► SUB subscribers
                               ▼                      │   (topic <SYMBOL>.book, .trade, ...)
                    decode → session checks → execute(cmd) → route events
                               ▲                      │
    timers: heartbeats, drops (cancel-on-disconnect), │
            feed ticks, venue Tick ───────────────────┘   Reply / Push ──► the account's sessions

Contract:

- **One door.** Every command that reaches the core, from a session, a
  timer, the feed or start-up funding, goes through :meth:`Server.execute`,
  which stamps the venue clock (``time.time_ns()``) and calls
  ``venue.apply``. A journal hooks there (``Server.journal``, an object with
  ``append(seq, ts, command)`` and ``commit()``, e.g.
  :class:`exchange_sim.journal.Journal`): what passes that door replays the
  run exactly. With a journal, replies and market data of a loop turn are
  held back until ``commit()`` returns, so "acknowledged" means "on disk".
  Commands refused by the server itself (auth, permissions, rate limit,
  malformed) never reach it and change nothing.
- **Bad input never crashes and never changes state.** Every frame is
  size-checked, then decoded by one typed msgspec decoder; every failure is a
  typed ``Rejected`` (MALFORMED, UNKNOWN_MESSAGE, INVALID_FIELD,
  NOT_LOGGED_IN, AUTH_FAILED, NOT_ALLOWED, RATE_LIMITED) and a log line
  (log lines are themselves rate-limited; the counters in ``Stats`` are not).
- **A server fault is the server's, not the bot's.** An exception inside the
  venue (or the server's own frame handling) is logged with its command and
  traceback, counted in ``Stats.rejects["internal"]`` and answered as
  ``Rejected(INTERNAL)``: the command's effect is unknown, the server keeps
  serving everyone else.
- **One fan-out.** The events of a session's command and of a timer's
  (feed, clock, cancel-on-disconnect) are routed by one function,
  :meth:`Server._fan_out`.
- **Slow consumers never slow matching.** PUB drops beyond ``pub_hwm`` per
  subscriber (the subscriber sees a sequence gap and re-syncs from a
  snapshot). ROUTER sends are non-blocking with ``ROUTER_MANDATORY``: a reply
  to a peer that is gone or ``router_hwm`` behind is dropped and counted.

Loop choices (measured in ``docs/adr/0002-server-loop.md``): drain the
ROUTER with non-blocking ``recv`` calls and only ``poll`` when it is empty;
one PUB frame per message with the topic as a prefix (one ``send``, not
two); a request's private events travel in one ``Reply`` frame; replies and
market data are held to the end of a drain turn and sent together, which
wakes libzmq's I/O thread once per turn instead of once per reply.
"""

from __future__ import annotations

import logging
import signal
import time
import traceback
from decimal import Decimal

import zmq

from exchange_sim import config as config_mod
from exchange_sim.config import Config
from exchange_sim.liquidity.house import STEP_MS
from exchange_sim.server.latency import DelayQueue, SessionLatency
from exchange_sim.server.routing import (
    ADMIN_EV,
    PUBLIC,
    REPLY,
    ROUTES,
    classify_decode_error,
    route,
    topic_prefix,
)
from exchange_sim.server.sessions import ACCOUNT, ADMIN, IdempotencyStore, KeyRing, Session, policy
from exchange_sim.server.sessions import PUBLIC as PUBLIC_CMD
from exchange_sim.venue import Venue
from protocol import messages as m
from protocol.messages import CancelOnDisconnect, Deposit, NewOrder, OpenAccount, OrderAccepted, Rejected, RejectReason
from protocol.session import (
    BatchIn,
    BatchReply,
    BookHeartbeat,
    CheckInvariants,
    Heartbeat,
    SnapshotTaken,
    TakeSnapshot,
    Invariants,
    LoggedOut,
    Login,
    LoginOk,
    Logout,
    Push,
    QueryStats,
    Reply,
    RequestIn,
    Stats,
    decode_command,
    decode_inbound,
    encode,
)

log = logging.getLogger("exchange_sim.server")
R = RejectReason
_COMMANDS = frozenset(m.Command.__args__)  # type: ignore[attr-defined]
_QUERIES = frozenset(c for c in _COMMANDS if c.__name__.startswith("Query"))
_DRAIN = 256  # frames handled per loop turn before timers get a look
# With a journal each turn ends in one fsync (group commit): a longer turn
# amortizes it over more commands, at the price of a little more ack latency.
_DRAIN_JOURNAL = 1024
_MORE = zmq.SNDMORE | zmq.NOBLOCK
_NOBLOCK = zmq.NOBLOCK


class Server:
    """A venue served over ZeroMQ. See the module docstring.

    >>> srv = Server(config_mod.default(), orders_endpoint="tcp://127.0.0.1:*")  # doctest: +SKIP
    >>> orders, md = srv.bind()                                                 # doctest: +SKIP
    >>> srv.serve_forever(duration=10)                                           # doctest: +SKIP
    """

    def __init__(self, config: Config | None = None, *, orders_endpoint: str | None = None,
                 market_data_endpoint: str | None = None, feed=None, venue: Venue | None = None,
                 context: zmq.Context | None = None):
        self.config = config if config is not None else config_mod.default()
        p = self.params = self.config.server
        self.venue = venue if venue is not None else Venue(self.config)
        self.orders_endpoint = orders_endpoint or p.orders_endpoint
        self.market_data_endpoint = market_data_endpoint or p.market_data_endpoint
        self.feed = feed
        #: ``append(seq, ts, command)`` before each apply, ``commit()`` before replies go out
        self.journal = None
        self._outbox: list | None = None  # (session or None for PUB, payload) held to the end of a turn
        #: hold replies and market data to the end of each drain turn (see ADR 0002)
        self.hold_replies = True
        self.keys = KeyRing(p.admin_key, {a.account: a.api_key for a in p.accounts})
        # one idempotency window (ADR 0008): the venue's durable client-id memory
        self.idem = IdempotencyStore(self.config.venue.client_id_memory)
        self.sessions: dict[bytes, Session] = {}
        #: admin sessions watching every account (Login.firehose)
        self.firehose: list[Session] = []
        #: ``serve --data-dir``: where snapshots go, and how often (commands)
        self.data_dir = None
        self.snapshot_every = 0
        self.by_account: dict[int, list[Session]] = {}
        self._next_sid = 1
        self._rate = float(p.rate_limit_per_s)
        self._burst = float(p.rate_limit_burst)
        self._max_frame = p.max_frame_bytes
        self._hb_s = p.heartbeat_interval_ms / 1000
        self._timeout_s = p.heartbeat_timeout_ms / 1000
        self._md_hb_s = p.md_heartbeat_ms / 1000
        self._tick_s = p.tick_interval_ms / 1000
        self._running = False
        # counters (Stats)
        self.frames_in = 0
        self.commands = 0
        self.published = 0
        self.rejects: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self._log_tokens = 20.0
        self._log_stamp = time.monotonic()
        self.ctx = context or zmq.Context.instance()
        self.router: zmq.Socket | None = None
        self.pub: zmq.Socket | None = None
        # --- house liquidity (exchange_sim/liquidity/, docs/adr/0013-house-liquidity.md)
        #: ``serve --liquidity``: the house agents, stepped after index moves and on a timer
        #: (``serve --replay``: the replay market, stepped the same way)
        self.house = None
        #: the venue clock execute stamps (ns); ``serve --replay``: the data's time
        self.clock = time.time_ns
        #: the server's own ``Tick`` every ``tick_interval_ms`` of wall time; ``serve --replay``
        #: turns it off (the replay sends its Ticks in data time, so the journal does not depend on the wall clock)
        self.wall_ticks = True
        self._next_house = 0.0
        # --- latency (exchange_sim/server/latency.py): frames waiting out a session's delay
        self._delayed = DelayQueue()
        self._lat_by_account = {a.account: a.latency for a in p.accounts if a.latency}

    # ---------------------------------------------------------------- sockets

    def bind(self) -> tuple[str, str]:
        """Bind both sockets; return the endpoints actually bound (a ``*``
        port resolved), e.g. ``("tcp://127.0.0.1:41017", "tcp://127.0.0.1:41018")``."""
        p = self.params
        router = self.ctx.socket(zmq.ROUTER)
        pub = self.ctx.socket(zmq.PUB)
        for s in (router, pub):
            s.linger = 200
            if p.curve_secret_key is not None:
                s.curve_secretkey = p.curve_secret_key.encode()
                s.curve_publickey = p.curve_public_key.encode()
                s.curve_server = True
        router.router_mandatory = 1  # sends to a gone/full peer raise: counted, never block
        router.sndhwm = p.router_hwm
        router.rcvhwm = p.router_hwm
        router.maxmsgsize = 16 * p.max_frame_bytes  # beyond this libzmq drops the connection
        pub.sndhwm = p.pub_hwm
        router.bind(self.orders_endpoint)
        pub.bind(self.market_data_endpoint)
        self.router, self.pub = router, pub
        self.orders_endpoint = router.last_endpoint.decode()
        self.market_data_endpoint = pub.last_endpoint.decode()
        return self.orders_endpoint, self.market_data_endpoint

    def close(self) -> None:
        for s in (self.router, self.pub):
            if s is not None:
                s.close()
        self.router = self.pub = None

    # ------------------------------------------------------------ the one door

    def execute(self, command) -> list:
        """Stamp ``command`` with the venue clock and apply it: the only path
        into the core. Never raises: a crash inside the venue is logged and
        answered as ``Rejected(INTERNAL)`` (state may then be suspect: ``CheckInvariants``)."""
        ts = self.clock()
        if self.journal is not None:
            self.journal.append(self.venue.seq + 1, ts, command)
        self.commands += 1
        try:
            events = self.venue.apply(command, ts)
            if self.house is not None:
                self.house.observe(command, events)
            if self.snapshot_every and self.venue.seq % self.snapshot_every == 0:
                self.take_snapshot()
            return events
        except Exception as exc:  # a venue bug must not take every session down
            log.error("venue raised on %r: %s\n%s", command, exc, traceback.format_exc())
            self._count(self.rejects, R.INTERNAL.value)
            return [Rejected(reason=R.INTERNAL, message=f"internal error: {type(exc).__name__}: {exc}",
                             command=type(command).__name__, account=getattr(command, "account", None))]

    def take_snapshot(self) -> SnapshotTaken | None:
        """Write the whole venue state to the data dir (journal synced first,
        so the snapshot never runs ahead of the journal). None without one."""
        if self.data_dir is None:
            return None
        import hashlib

        from exchange_sim import journal as journal_mod
        from exchange_sim import snapshot

        if self.journal is not None:
            self.journal.commit()
        data = snapshot.encode(snapshot.capture(self.venue))
        digest = hashlib.sha256(data).hexdigest()
        path = journal_mod.write_snapshot(self.data_dir, self.venue.seq, digest, data)
        log.info("snapshot at seq %d: %s", self.venue.seq, path.name)
        return SnapshotTaken(seq=self.venue.seq, state_hash=digest, file=path.name)

    def start_up(self) -> None:
        """Open the configured accounts and make their faucet deposits (and the
        house agents' accounts, with ``--liquidity``), through :meth:`execute`
        like everything else."""
        self.start_house()
        for acct in self.params.accounts:
            if acct.account not in self.venue.accounts:
                self.execute(OpenAccount(account=acct.account))
            for asset, amount in sorted(acct.deposits.items()):
                a = self.venue.assets.get(asset)
                if a is None:
                    raise ValueError(f"server.accounts[{acct.account}]: unknown asset {asset!r}")
                minor = int(Decimal(amount) * a.unit)
                if minor > 0:
                    ev = self.execute(Deposit(account=acct.account, asset=asset, amount=minor))
                    if ev and type(ev[0]) is Rejected:
                        raise ValueError(f"start-up deposit refused: {ev[0].message}")

    def start_house(self) -> None:
        """The house's (or replay's) start-up commands: its accounts on a fresh
        venue; on a recovered one, whatever it needs to start again."""
        if self.house is not None:
            for cmd in self.house.start_up(self.venue):
                ev = self.execute(cmd)
                if ev and type(ev[0]) is Rejected:
                    raise ValueError(f"{type(self.house).__name__} start-up refused: {ev[0].message}")

    # -------------------------------------------------------------- main loop

    def stop(self, *_args) -> None:
        """Ask the loop to finish its turn and return (signal-handler safe)."""
        self._running = False

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGTERM, self.stop)

    def serve_forever(self, duration: float | None = None) -> None:
        """Serve until :meth:`stop` (SIGINT/SIGTERM) or ``duration`` seconds."""
        if self.router is None:
            self.bind()
        router = self.router
        recv = router.recv
        getsockopt = router.getsockopt  # ``router.rcvmore`` goes through attribute magic: 3x slower
        RCVMORE = zmq.RCVMORE
        on_frame = self._on_frame
        NOBLOCK = zmq.NOBLOCK
        Again = zmq.Again
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        mono = time.monotonic
        now = mono()
        deadline = None if duration is None else now + duration
        self._next_hb = now + self._hb_s
        self._next_md_hb = now + self._md_hb_s
        self._next_tick = now + self._tick_s if self._tick_s and self.wall_ticks else None
        if self.feed is not None:
            self.feed.start(now)
        next_timer = now
        self._outbox = [] if (self.journal is not None or self.hold_replies) else None
        self._running = True
        drain = _DRAIN_JOURNAL if self.journal is not None else _DRAIN
        while self._running:
            house = self.house  # read each turn: an application may start or stop it (the demo's warm-up)
            n = 0
            while n < drain:
                try:
                    ident = recv(NOBLOCK)
                except Again:
                    break
                frame = recv()
                try:
                    if getsockopt(RCVMORE):
                        self._multi_frame(ident, frame)
                    else:
                        on_frame(ident, frame)
                except Exception as exc:  # a server bug must not take every session down
                    self._internal_error(ident, exc)
                n += 1
                if house is not None and house.moved:  # re-quote right after the command that moved the index
                    self._house_turn(mono())
            now = mono()
            if now >= next_timer:
                next_timer = self._timers(now)
            if house is not None and (house.moved or now >= self._next_house):
                self._house_turn(now)
            if self._delayed:
                self._release_delayed(now)
            if self._outbox:
                self._flush_outbox()
            if deadline is not None and now >= deadline:
                break
            if n < drain:
                wait = next_timer - now
                if house is not None:
                    wait = min(wait, self._next_house - now)
                nd = self._delayed.next_due()
                if nd is not None:
                    wait = min(wait, nd - now)
                if deadline is not None:
                    wait = min(wait, deadline - now)
                poller.poll(max(0, min(int(wait * 1000) + 1, 100)))
        self._shutdown()

    def _flush_outbox(self) -> None:
        """End of a turn: the journal (if any) is synced, then the held replies go out."""
        if self.journal is not None:
            self.journal.commit()
        out, self._outbox = self._outbox, None
        try:
            for sess, payload in out:
                if sess is None:
                    self.pub.send(payload)
                else:
                    self._send_now(sess, payload)  # its latency (if any) was applied when it was queued
        finally:
            self._outbox = []

    def _shutdown(self) -> None:
        if self._outbox:
            self._flush_outbox()
        if self.data_dir is not None:
            self.take_snapshot()
        self._outbox = None
        bye = encode(LoggedOut(reason="server shutting down"))
        for sess in list(self.sessions.values()):
            if sess.logged_in:
                self._send(sess, bye)
        self._running = False

    # ---------------------------------------------------------------- timers

    def _timers(self, now: float) -> float:
        if now >= self._next_hb:
            self._next_hb = now + self._hb_s
            self._heartbeats(now)
        if now >= self._next_md_hb:
            self._next_md_hb = now + self._md_hb_s
            for sym, ins in self.venue.instruments.items():
                self._publish(sym.encode() + b".book\x00" + encode(BookHeartbeat(symbol=sym, seq=ins.book_seq)))
        if self._next_tick is not None and now >= self._next_tick:
            self._next_tick = now + self._tick_s
            self._from_timer(m.Tick())
        if self.feed is not None:
            due = self.feed.next_due()
            if due is not None and now >= due:
                for cmd in self.feed.poll(now):
                    self._from_timer(cmd)
        nxt = min(self._next_hb, self._next_md_hb)
        if self._next_tick is not None:
            nxt = min(nxt, self._next_tick)
        if self.feed is not None:
            due = self.feed.next_due()
            if due is not None:
                nxt = min(nxt, due)
        return nxt

    def _heartbeats(self, now: float) -> None:
        frame = encode(Heartbeat(ts=self.venue.now, seq=self.venue.seq))
        limit = now - self._timeout_s
        for sess in list(self.sessions.values()):
            if sess.last_seen < limit:
                self._drop(sess, "heartbeat timeout")
            elif sess.logged_in:
                self._send(sess, frame)

    def _drop(self, sess: Session, reason: str) -> None:
        """End a session; cancel-on-disconnect sends CancelOnDisconnect (an
        admin command: cancels with cause ``disconnect``) through the door."""
        self.sessions.pop(sess.ident, None)
        if sess in self.firehose:
            self.firehose.remove(sess)
        cancelled = False
        if sess.logged_in:
            peers = self.by_account.get(sess.account)
            if peers is not None:
                if sess in peers:
                    peers.remove(sess)
                if not peers:
                    del self.by_account[sess.account]
            if sess.cod and sess.account in self.venue.accounts:
                self._from_timer(CancelOnDisconnect(account=sess.account))
                cancelled = True
            log.info("session %d (account %s) ended: %s%s", sess.sid, sess.account, reason,
                     "; orders cancelled" if cancelled else "")
            self._send(sess, encode(LoggedOut(reason=reason, cancelled_orders=cancelled)))
        sess.logged_in = False

    def _from_timer(self, command) -> None:
        """A command no session asked for (feed, clock, cancel-on-disconnect)."""
        pushes: dict[Session, list] = {}
        for ev in self._fan_out(self.execute(command), None, pushes):
            if type(ev) is Rejected:
                self._log_bad(None, f"timer command {type(command).__name__} rejected: {ev.message}")
        if pushes:
            self._flush(pushes)

    # --- latency
    def _release_delayed(self, now: float) -> None:
        """Frames whose delay is over: inbound ones are handled (a session
        that ended meanwhile is skipped), outbound ones sent."""
        for inbound, sess, frame in self._delayed.pop_due(now):
            if not inbound:
                self._send_now(sess, frame)
            elif self.sessions.get(sess.ident) is sess:
                try:
                    self._handle_frame(sess, frame, now)
                except Exception as exc:  # as in the drain loop: a server bug must not stop the loop
                    self._internal_error(sess.ident, exc)

    def _latency_for(self, sess: Session, asked: str | None, account: int) -> SessionLatency | None:
        """The latency of a session that logs in: the profile it asked for, else
        its key's, else the server default; None if that is no delay."""
        lp = self.params.latency
        name = asked or self._lat_by_account.get(account) or lp.default
        if not name:
            return None
        lat = SessionLatency(name, lp.profiles[name], lp.seed, sess.sid)
        return lat if lat.entry_on or lat.md_on else None

    # --- house liquidity
    def _house_turn(self, now: float) -> None:
        """Step the house agents: each command they make goes through the one
        door (journaled, routed) before the next is decided."""
        self._next_house = now + STEP_MS / 1000
        house = self.house
        if house is None:
            return
        for cmd in house.step(self.venue, time.time_ns()):
            self._from_timer(cmd)

    def _fan_out(self, events: list, sess: Session | None, pushes: dict) -> list:
        """Route one command's events; return the requester's share.

        Public events go to the PUB socket; private ones to their account's
        other sessions and the firehose, as ``pushes``; admin events to the
        firehose. The requester ``sess`` (None for a timer's command) gets in
        its reply: its rejects and REPLY-only answers, the events of its own
        account (an admin: every event). For a timer the share is just its
        rejects (nobody asked, so nobody is answered)."""
        reply = []
        me = sess.account if sess is not None else None
        admin = sess is not None and sess.admin
        routes = ROUTES
        firehose = self.firehose
        for ev in events:
            et = type(ev)
            r = routes.get(et)
            if r is None:
                r = route(et)
            if r == PUBLIC:
                self._publish(topic_prefix(ev) + encode(ev))
                if admin:
                    reply.append(ev)
            elif r == REPLY or et is Rejected:
                if sess is not None or et is Rejected:
                    reply.append(ev)
            elif r == ADMIN_EV:
                if admin:
                    reply.append(ev)
                for peer in firehose:
                    if peer is not sess:
                        pushes.setdefault(peer, []).append(ev)
            else:
                acct = ev.account
                if sess is not None and (acct == me or admin or acct is None):
                    reply.append(ev)
                peers = self.by_account.get(acct)
                if peers:
                    for peer in peers:
                        if peer is not sess:
                            lst = pushes.get(peer)
                            if lst is None:
                                pushes[peer] = [ev]
                            else:
                                lst.append(ev)
                for peer in firehose:
                    if peer is not sess and peer.account != acct:
                        pushes.setdefault(peer, []).append(ev)
        return reply

    # ---------------------------------------------------------------- frames

    def _multi_frame(self, ident: bytes, first: bytes) -> None:
        """More than one frame after the identity: a REQ peer's ``[b"", body]``
        is fine; anything else is a wrong frame count."""
        frames = [first]
        while self.router.rcvmore:
            frames.append(self.router.recv())
        if len(frames) == 2 and frames[0] == b"":
            sess = self.sessions.get(ident)
            if sess is None:
                sess = self._new_session(ident)
            sess.req = True
            self._on_frame(ident, frames[1])
            return
        sess = self.sessions.get(ident) or self._new_session(ident)
        sess.last_seen = time.monotonic()
        self.frames_in += 1
        self._reject_frame(sess, R.MALFORMED, f"expected 1 frame per message, got {len(frames)}")

    def _internal_error(self, ident: bytes, exc: Exception) -> None:
        """A bug in the server's own handling of a frame: logged with its
        traceback, counted, answered as INTERNAL (the client did nothing wrong)."""
        log.error("internal error on a frame from %r: %s\n%s", ident, exc, traceback.format_exc())
        self._count(self.rejects, R.INTERNAL.value)
        sess = self.sessions.get(ident)
        if sess is not None:
            try:
                self._send(sess, encode(Rejected(reason=R.INTERNAL, message=f"internal error: {type(exc).__name__}")))
            except Exception:
                pass

    def _new_session(self, ident: bytes) -> Session:
        sess = Session(ident, self._next_sid, time.monotonic(), self._burst)
        self._next_sid += 1
        if self.params.latency.default:  # --- latency: before login, the default profile
            sess.lat = self._latency_for(sess, None, -1)
        self.sessions[ident] = sess
        return sess

    def _on_frame(self, ident: bytes, frame: bytes) -> None:
        sess = self.sessions.get(ident)
        if sess is None:
            sess = self._new_session(ident)
        now = time.monotonic()
        sess.last_seen = now
        self.frames_in += 1
        lat = sess.lat
        if lat is not None and lat.entry_on:  # --- latency: the frame reaches the venue later
            self._delayed.push(lat.entry_due(now), (True, sess, frame))
            return
        self._handle_frame(sess, frame, now)

    def _handle_frame(self, sess: Session, frame: bytes, now: float) -> None:
        if len(frame) > self._max_frame:
            self._reject_frame(sess, R.MALFORMED, f"frame of {len(frame)} bytes exceeds the maximum {self._max_frame}")
            return
        try:
            msg = decode_inbound(frame)
        except Exception as exc:  # msgspec errors, and e.g. UnicodeDecodeError on bad UTF-8
            reason, text = classify_decode_error(exc, frame)
            self._reject_frame(sess, reason, text)
            return
        t = type(msg)
        if t is RequestIn:
            if not sess.take(1, now, self._rate, self._burst):
                self._reply(sess, msg.id, [self._rej(sess, R.RATE_LIMITED, "rate limit exceeded", "Request")])
                return
            try:
                cmd = decode_command(msg.cmd)
            except Exception as exc:
                reason, text = classify_decode_error(exc, msg.cmd)
                self._reply(sess, msg.id, [self._rej(sess, reason, text, "Request")])
                return
            pushes: dict[Session, list] = {}
            reply, dup = self._command(sess, cmd, pushes)
            self._send(sess, encode(Reply(id=msg.id, events=reply, duplicate=dup)))
            if pushes:
                self._flush(pushes)
        elif t is Heartbeat:
            return
        elif t in _COMMANDS:
            if not sess.take(1, now, self._rate, self._burst):
                self._reply(sess, None, [self._rej(sess, R.RATE_LIMITED, "rate limit exceeded", t.__name__)])
                return
            pushes = {}
            reply, dup = self._command(sess, msg, pushes)
            self._send(sess, encode(Reply(id=None, events=reply, duplicate=dup)))
            if pushes:
                self._flush(pushes)
        elif t is BatchIn:
            self._batch(sess, msg, now)
        elif t is Login:
            self._login(sess, msg, now)
        elif t is Logout:
            if sess.logged_in:
                self._drop(sess, "logout")
            else:
                self._send(sess, encode(LoggedOut(reason="not logged in")))
        elif t is CheckInvariants or t is QueryStats or t is TakeSnapshot:
            self._admin_query(sess, msg)
        else:  # a session message valid on the wire but not accepted inbound
            self._reject_frame(sess, R.UNKNOWN_MESSAGE, f"{t.__name__} is not accepted by the server")

    def _batch(self, sess: Session, msg: BatchIn, now: float) -> None:
        cmds = msg.cmds
        if len(cmds) > self.params.max_batch:
            self._send(sess, encode(BatchReply(id=msg.id, results=[[self._rej(
                sess, R.INVALID_FIELD, f"batch of {len(cmds)} exceeds max_batch {self.params.max_batch}", "Batch")]])))
            return
        results = []
        dups = []
        pushes: dict[Session, list] = {}
        rate, burst = self._rate, self._burst
        for i, raw in enumerate(cmds):
            if not sess.take(1, now, rate, burst):
                results.append([self._rej(sess, R.RATE_LIMITED, "rate limit exceeded", "Batch")])
                continue
            try:
                cmd = decode_command(raw)
            except Exception as exc:
                reason, text = classify_decode_error(exc, raw)
                results.append([self._rej(sess, reason, f"command {i}: {text}", "Batch")])
                continue
            reply, dup = self._command(sess, cmd, pushes)
            results.append(reply)
            if dup:
                dups.append(i)
        self._send(sess, encode(BatchReply(id=msg.id, results=results, duplicates=dups)))
        if pushes:
            self._flush(pushes)

    # --------------------------------------------------------------- commands

    def _command(self, sess: Session, cmd, pushes: dict) -> tuple[list, bool]:
        """Check one decoded command against the session, apply it, route its
        events. Returns the requester's events and whether they are a stored
        duplicate."""
        t = type(cmd)
        pol = policy(t)
        if pol == ACCOUNT:
            if not sess.logged_in:
                return [self._rej(sess, R.NOT_LOGGED_IN, "log in first", t.__name__)], False
            if cmd.account != sess.account and not sess.admin:
                return [self._rej(sess, R.NOT_ALLOWED,
                                  f"this session is account {sess.account}, not {cmd.account}", t.__name__)], False
        elif pol == ADMIN:
            if not sess.admin:
                why = "an admin command: log in with the admin key" if sess.logged_in else "log in (as admin) first"
                reason = R.NOT_ALLOWED if sess.logged_in else R.NOT_LOGGED_IN
                return [self._rej(sess, reason, f"{t.__name__} is {why}", t.__name__)], False
        cid = None
        if t is NewOrder and cmd.client_order_id is not None:
            cid = cmd.client_order_id
            hit = self.idem.get(cmd.account, cid)
            if hit is not None:
                if hit[0] == cmd:
                    return hit[1], True
                return [self._rej(sess, R.DUPLICATE_CLIENT_ORDER_ID,
                                  f"client order id {cid!r} was used for a different order", t.__name__)], False
        # a read is answered from the venue's views: no sequence number, no journal record (ADR 0007)
        events = self.venue.query(cmd) if t in _QUERIES else self.execute(cmd)
        if pol == PUBLIC_CMD or t in _QUERIES:
            reply = events  # a query's answer is for the asker alone
        else:
            reply = self._fan_out(events, sess, pushes)
        if cid is not None and reply and type(reply[0]) is OrderAccepted:
            self.idem.put(cmd.account, cid, cmd, reply)
        return reply, False

    def _flush(self, pushes: dict) -> None:
        for peer, evs in pushes.items():
            self._send(peer, encode(Push(events=evs)))

    # ------------------------------------------------------------ login etc.

    def _login(self, sess: Session, msg: Login, now: float) -> None:
        if not sess.take(1, now, self._rate, self._burst):
            self._send(sess, encode(self._rej(sess, R.RATE_LIMITED, "rate limit exceeded", "Login")))
            return
        if sess.logged_in:
            self._send(sess, encode(self._rej(sess, R.NOT_ALLOWED,
                                              f"already logged in as account {sess.account}; log out first", "Login")))
            return
        who = self.keys.check(msg.account, msg.api_key)
        if who is None:
            self._send(sess, encode(self._rej(sess, R.AUTH_FAILED, "unknown account or wrong api key", "Login")))
            return
        if msg.firehose and who != "admin":
            self._send(sess, encode(self._rej(sess, R.NOT_ALLOWED, "firehose is for admin sessions", "Login")))
            return
        if msg.latency is not None and msg.latency not in self.params.latency.profiles:
            names = ", ".join(sorted(self.params.latency.profiles)) or "none configured"
            self._send(sess, encode(self._rej(sess, R.INVALID_FIELD,
                                              f"unknown latency profile {msg.latency!r}; valid: {names}", "Login")))
            return
        sess.lat = self._latency_for(sess, msg.latency, msg.account)  # --- latency: LoginOk already delayed
        sess.logged_in = True
        sess.admin = who == "admin"
        sess.account = msg.account
        sess.cod = msg.cancel_on_disconnect
        if msg.firehose:
            self.firehose.append(sess)
        self.by_account.setdefault(msg.account, []).append(sess)
        p = self.params
        log.info("session %d logged in as %s%s", sess.sid, "admin" if sess.admin else f"account {msg.account}",
                 " (cancel-on-disconnect)" if sess.cod else "")
        self._send(sess, encode(LoginOk(
            account=msg.account, admin=sess.admin, session=sess.sid, protocol_version=m.PROTOCOL_VERSION,
            heartbeat_interval_ms=p.heartbeat_interval_ms, heartbeat_timeout_ms=p.heartbeat_timeout_ms,
            cancel_on_disconnect=sess.cod, rate_limit_per_s=p.rate_limit_per_s, max_batch=p.max_batch,
            rate_limit_burst=p.rate_limit_burst, max_frame_bytes=p.max_frame_bytes,
            idempotency_window=self.idem.window,
            latency=sess.lat.name if sess.lat is not None else "",
        )))

    def _admin_query(self, sess: Session, msg) -> None:
        name = type(msg).__name__
        if not sess.admin:
            self._send(sess, encode(self._rej(sess, R.NOT_ALLOWED, f"{name} is an admin command", name)))
            return
        if type(msg) is TakeSnapshot:
            snap = self.take_snapshot()
            out = snap if snap is not None else self._rej(
                sess, R.NOT_ALLOWED, "this server has no data dir (serve --data-dir DIR)", name)
        elif type(msg) is CheckInvariants:
            try:
                self.venue._check()
                out = Invariants(seq=self.venue.seq, ok=True)
            except AssertionError as exc:
                out = Invariants(seq=self.venue.seq, ok=False, message=str(exc) or "assertion failed")
        else:
            out = self.stats()
        self._send(sess, encode(out))

    def stats(self) -> Stats:
        return Stats(
            seq=self.venue.seq, sessions=len(self.sessions),
            logged_in=sum(1 for s in self.sessions.values() if s.logged_in),
            commands=self.commands, frames_in=self.frames_in, rejects=dict(self.rejects),
            dropped=dict(self.dropped), published=self.published,
        )

    # -------------------------------------------------------------- sending

    def _send(self, sess: Session, payload: bytes) -> None:
        """Non-blocking send to one peer; a gone or full peer is counted."""
        lat = sess.lat
        if lat is not None and lat.md_on:  # --- latency: the session hears it later
            self._delayed.push(lat.out_due(time.monotonic()), (False, sess, payload))
            return
        self._send_now(sess, payload)

    def _send_now(self, sess: Session, payload: bytes) -> None:
        if self._outbox is not None:
            self._outbox.append((sess, payload))
            return
        send = self.router.send
        try:
            send(sess.ident, _MORE)
            if sess.req:
                send(b"", _MORE)
            send(payload, _NOBLOCK)
        except zmq.Again:
            self._count(self.dropped, "reply_peer_slow")
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                self._count(self.dropped, "reply_peer_gone")
            else:
                raise

    def _publish(self, frame: bytes) -> None:
        """PUB never blocks: beyond ``pub_hwm`` a subscriber's messages are dropped."""
        self.published += 1
        if self._outbox is not None:
            self._outbox.append((None, frame))
        else:
            self.pub.send(frame)

    def _reply(self, sess: Session, req_id: int | None, events: list) -> None:
        self._send(sess, encode(Reply(id=req_id, events=events)))

    def _rej(self, sess: Session, reason: RejectReason, message: str, command: str = "") -> Rejected:
        self._count(self.rejects, reason.value)
        self._log_bad(sess, f"{reason.value}: {message}")
        return Rejected(reason=reason, message=message, command=command)

    def _reject_frame(self, sess: Session, reason: RejectReason, message: str) -> None:
        """A frame with no readable request id: a bare Rejected back."""
        rej = self._rej(sess, reason, message)
        self._send(sess, encode(rej))

    def _log_bad(self, sess: Session | None, text: str) -> None:
        """One log line per bad input, at most ~20 a second (then counted)."""
        now = time.monotonic()
        self._log_tokens = min(20.0, self._log_tokens + (now - self._log_stamp) * 20.0)
        self._log_stamp = now
        if self._log_tokens >= 1.0:
            self._log_tokens -= 1.0
            log.warning("%s: %s", sess if sess is not None else "timer", text)
        else:
            self._count(self.dropped, "log_lines_suppressed")

    @staticmethod
    def _count(counter: dict[str, int], key: str) -> None:
        counter[key] = counter.get(key, 0) + 1
