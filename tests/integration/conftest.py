"""Integration fixtures: a real ``exchange-sim serve`` subprocess on free
127.0.0.1 ports, clients over real sockets, and a deadline on every test.

- ``serve(**server_overrides)`` starts a server with the embedded config and
  the given ``[server]`` values (e.g. ``heartbeat_timeout_ms=300``), waits for
  its "ready" line and returns a :class:`ServerProc` with the endpoints it
  bound (``tcp://127.0.0.1:*``: the kernel picks free ports, the server
  prints them). Stopped with SIGTERM at the end of the test (SIGKILL if it
  does not exit), and ``--duration`` bounds its life even if the test
  process dies.
- Every test runs under a deadline (``SIGALRM``; default 60 s, or
  ``@pytest.mark.deadline(seconds)``): blocking ZeroMQ calls are interrupted
  and the test fails with :class:`DeadlineExceeded` instead of hanging CI.
  Standard library only, no pytest-timeout.
"""

from __future__ import annotations

import signal

import pytest
import zmq

from integration_helpers import ServerProc, start_server

DEFAULT_DEADLINE_S = 60


class DeadlineExceeded(Exception):
    pass


def pytest_configure(config):
    config.addinivalue_line("markers", "deadline(seconds): fail the test if it runs longer than this")


@pytest.fixture(autouse=True)
def _deadline(request):
    marker = request.node.get_closest_marker("deadline")
    seconds = marker.args[0] if marker else DEFAULT_DEADLINE_S

    def on_alarm(signum, frame):
        raise DeadlineExceeded(f"{request.node.name} exceeded its {seconds}s deadline")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def serve(tmp_path):
    """``serve(**server_overrides)`` -> ServerProc; all stopped at teardown."""
    procs: list[ServerProc] = []

    def _serve(venue: dict | None = None, args: tuple[str, ...] = (), **server) -> ServerProc:
        sp = start_server(tmp_path, server, venue, args)
        procs.append(sp)
        return sp

    yield _serve
    for sp in procs:
        sp.stop()


@pytest.fixture
def server(serve) -> ServerProc:
    """A server with the embedded default config."""
    return serve()


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


@pytest.fixture
def gateway(tmp_path, server):
    """``exchange-sim gateway`` (Binance USD-M REST + WebSocket) in front of
    ``server``, on a free loopback port (tests/integration/gateway_helpers.py)."""
    from gateway_helpers import start_gateway

    gw = start_gateway(tmp_path, server)
    yield gw
    gw.stop()
