"""Sessions: who is on a connection, what they may do, how fast.

A session is one ROUTER peer (one DEALER connection), created on its first
frame and bound to an account by ``Login``. The rules, as on real venues:

- **Auth.** API keys come from ``[[server.accounts]]``; the admin key logs in
  as admin. Keys are compared in constant time (``hmac.compare_digest``) and
  a wrong key and an unknown account get the same answer, so a probe learns
  nothing about which accounts exist.
- **Permissions** (:func:`policy`): admin commands (faucet deposit, index
  price, shock, pause, open/close account, funding, clock ticks, the
  cancel-on-disconnect the server itself sends) need the admin session; public queries (book snapshot, instruments) work before
  login; every other command carries an ``account`` that must be the
  session's own (else ``NOT_ALLOWED``). A command the server does not know
  yet with no ``account`` field is admin-only: new commands are closed by
  default.
- **Rate limit.** A token bucket per session (``rate_limit_per_s`` tokens a
  second, ``rate_limit_burst`` deep); a batch costs one token per command.
  ROUTER fair-queues its peers, so a flooding session only ever gets its own
  share of the loop and its excess is answered ``RATE_LIMITED`` cheaply,
  before decoding the command.
- **Idempotency: one window** (ADR 0008), ``venue.client_id_memory``
  (default 10,000) client order ids per account: those of the account's
  last N accepted orders, plus those of its open orders. The venue's memory
  of them is the durable one (in snapshots, rebuilt by journal replay): a
  new order reusing one is refused ``DUPLICATE_CLIENT_ORDER_ID`` naming the
  original order, in this run and after a restart. :class:`IdempotencyStore`
  is the fast path over the same window, in memory: within one server run an
  identical resend gets the stored original reply (``Reply.duplicate``).
  Rejected orders are not stored: they changed nothing, so evaluating a
  retry again cannot double anything. ``LoginOk.idempotency_window`` says N.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict

ADMIN, PUBLIC, ACCOUNT = 0, 1, 2

ADMIN_COMMANDS = frozenset({
    "Deposit", "SetIndexPrice", "ShockPrice", "PauseSymbol", "OpenAccount", "CloseAccount",
    "SettleFunding", "Tick",
    # carries an ``account``, so it would pass as the user's own: the server sends it
    "CancelOnDisconnect",
})
PUBLIC_COMMANDS = frozenset({"QueryBook", "QueryInstruments"})
PUBLIC_COMMANDS |= {"QueryLeverageTiers"}  # --- leverage (QueryLedger, with no account, stays ADMIN)
PUBLIC_COMMANDS |= {"QueryTrades", "QueryCandles", "QueryTicker", "QueryFundingHistory", "QueryPremiumIndex"}  # --- history

_policy_cache: dict[type, int] = {}


def policy(cls: type) -> int:
    """ADMIN, PUBLIC or ACCOUNT for a command class (cached)."""
    p = _policy_cache.get(cls)
    if p is None:
        name = cls.__name__
        if name in ADMIN_COMMANDS:
            p = ADMIN
        elif name in PUBLIC_COMMANDS:
            p = PUBLIC
        elif "account" in getattr(cls, "__struct_fields__", ()):
            p = ACCOUNT
        else:
            p = ADMIN
        _policy_cache[cls] = p
    return p


class Session:
    """One connection. Plain attributes with ``__slots__``: this object is
    touched on every frame."""

    __slots__ = (
        "ident", "sid", "account", "admin", "logged_in", "cod", "last_seen", "tokens", "stamp",
        "req",
        "lat",  # --- latency: a SessionLatency, or None (no delay)
    )

    def __init__(self, ident: bytes, sid: int, now: float, burst: float):
        self.ident = ident
        self.sid = sid
        self.account: int | None = None
        self.admin = False
        self.logged_in = False
        self.cod = False  # cancel-on-disconnect
        self.last_seen = now
        self.tokens = float(burst)
        self.stamp = now
        self.req = False  # a REQ peer: replies need the empty delimiter frame
        self.lat = None  # --- latency (exchange_sim/server/latency.py)

    def take(self, n: int, now: float, rate: float, burst: float) -> bool:
        """Token bucket: spend ``n`` tokens if there are that many. O(1)."""
        tokens = self.tokens + (now - self.stamp) * rate
        self.stamp = now
        if tokens > burst:
            tokens = burst
        if tokens >= n:
            self.tokens = tokens - n
            return True
        self.tokens = tokens
        return False

    def __repr__(self) -> str:
        who = "admin" if self.admin else f"account {self.account}" if self.logged_in else "anonymous"
        return f"<session {self.sid} {who}>"


class KeyRing:
    """API keys by account, and the admin key. Never printed."""

    def __init__(self, admin_key: str, keys: dict[int, str]):
        self._admin = admin_key.encode()
        self._keys = {a: k.encode() for a, k in keys.items()}

    def check(self, account: int, api_key: str) -> str | None:
        """``"admin"``, ``"user"`` or None (refused), in constant time per key."""
        given = api_key.encode("utf-8", "replace")
        if hmac.compare_digest(given, self._admin):
            return "admin"
        expected = self._keys.get(account)
        # compare against something even for an unknown account: same timing
        if hmac.compare_digest(given, expected if expected is not None else self._admin + b"\x00") and expected:
            return "user"
        return None

    def __repr__(self) -> str:
        return f"<KeyRing {len(self._keys)} accounts + admin>"


class IdempotencyStore:
    """Accepted new orders by (account, client order id), the last ``window``
    per account (FIFO). ``get``/``put`` are O(1)."""

    def __init__(self, window: int):
        self.window = window
        self._by_account: dict[int, OrderedDict] = {}

    def get(self, account: int, cid: str):
        store = self._by_account.get(account)
        return None if store is None else store.get(cid)

    def put(self, account: int, cid: str, command, reply: list) -> None:
        if not self.window:
            return
        store = self._by_account.get(account)
        if store is None:
            store = self._by_account[account] = OrderedDict()
        store[cid] = (command, reply)
        if len(store) > self.window:
            store.popitem(last=False)

    def __len__(self) -> int:
        return sum(len(s) for s in self._by_account.values())
