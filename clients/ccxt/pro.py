"""``import clients.ccxt.pro as ccxtpro`` for bots written against ccxt.pro:
the same classes as :mod:`clients.ccxt.async_support` (REST methods and
``watch_*`` on one asyncio exchange object)."""

from clients.ccxt.async_support import *  # noqa: F401,F403
from clients.ccxt.async_support import __all__, exchanges, exchangesim  # noqa: F401
