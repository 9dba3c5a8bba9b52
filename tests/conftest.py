"""Fixtures shared by the venue tests (the factories live in
``venue_helpers.py``)."""

from __future__ import annotations

import pytest

from exchange_sim.venue import Venue
from venue_helpers import MAKER, fund, make_venue


@pytest.fixture
def venue() -> Venue:
    """A fresh default venue, no accounts."""
    return make_venue()


@pytest.fixture
def v() -> Venue:
    """A default venue with accounts 1, 2, 3 holding 1,000,000 USDT each and
    :data:`MAKER` holding 100,000,000 USDT."""
    ven = make_venue()
    for acct in (1, 2, 3):
        fund(ven, acct, USDT=1_000_000)
    fund(ven, MAKER, USDT=100_000_000)
    return ven
