"""ccxt's base helpers that bots call on the exchange object
(``exchange.safe_string(d, "k")``, ``exchange.parse_timeframe("1h")``...),
with ccxt 4's semantics, written again so the facade needs no ccxt at run
time. ``tests/integration/test_ccxt_base.py`` checks each one against the
installed ``ccxt`` package on the same inputs.

:class:`clients.ccxt._base.ExchangeBase` exposes them as static methods
(and in camelCase: ``safeString``, ``safeString2``, ``parseTimeframe``...).
"""

from __future__ import annotations

import calendar
import collections
import datetime
import math
import re
import time
from operator import itemgetter

from clients.ccxt import errors as E

_TIMEFRAME_UNITS = {"y": 31_536_000, "M": 2_592_000, "w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}


def parse_timeframe(timeframe: str) -> int:
    """``"15m"`` -> 900: the timeframe in seconds (ccxt: a month is 30 days,
    a year 365)."""
    amount, unit = int(timeframe[0:-1]), timeframe[-1]
    scale = _TIMEFRAME_UNITS.get(unit)
    if scale is None:
        raise E.NotSupported(f"timeframe unit {unit} is not supported")
    return amount * scale


def iso8601(timestamp=None) -> str | None:
    """ms since the epoch -> ``2024-01-02T03:04:05.678Z``; None for what is
    not a non-negative integer timestamp (as ccxt)."""
    if isinstance(timestamp, str):
        if re.match(r"^[0-9]+$", timestamp) is None:
            return None
        timestamp = int(timestamp)
    elif isinstance(timestamp, bool):
        return None
    elif isinstance(timestamp, float):
        if not math.isfinite(timestamp):
            return None
        timestamp = math.floor(timestamp)
    if not isinstance(timestamp, int) or timestamp < 0 or timestamp > 8_640_000_000_000_000:
        return None
    try:
        secs, ms = divmod(timestamp, 1000)
        t = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=secs)
    except (OverflowError, ValueError):
        return None
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{ms:03d}Z"


_ISO8601 = re.compile(r"([0-9]{4})-?([0-9]{2})-?([0-9]{2})(?:T|[\s])?([0-9]{2}):?([0-9]{2}):?([0-9]{2})(\.[0-9]+)?"
                      r"(?:(\+|\-)([0-9]{2})\:?([0-9]{2})|Z)?", re.IGNORECASE)


def parse8601(timestamp=None) -> int | None:
    """An ISO 8601 string -> ms since the epoch (None if it is not one)."""
    if timestamp is None:
        return None
    try:
        match = _ISO8601.search(timestamp)
        if match is None:
            return None
        yyyy, mm, dd, h, mi, s, ms, sign, hours, minutes = match.groups()
        msint = int((ms[1:] + "00")[:3]) if ms else 0
        off = -1 if sign == "+" else 1
        dt = datetime.datetime(int(yyyy), int(mm), int(dd), int(h), int(mi), int(s))
        if sign:
            dt += datetime.timedelta(hours=int(hours) * off, minutes=int(minutes) * off)
        return calendar.timegm(dt.utctimetuple()) * 1000 + msint
    except (TypeError, OverflowError, OSError, ValueError):
        return None


def milliseconds() -> int:
    return time.time_ns() // 1_000_000


def seconds() -> int:
    return int(time.time())


def microseconds() -> int:
    return time.time_ns() // 1_000


# ------------------------------------------------------------ safe_*


def _get(d, key):
    """``d[key]`` or None (any error: missing key, wrong type, index out of range)."""
    try:
        return d[key]
    except Exception:
        return None


def _as_string(value):
    t = type(value)
    if t is str and value != "":
        return value
    if t is float or t is int:
        return str(value)
    return None


def _first(d, keys):
    """The first value under ``keys`` that is neither None nor ``""`` (ccxt's
    ``get_object_value_from_key_list``)."""
    if isinstance(d, dict):
        for key in keys:
            value = d.get(key)
            if value is not None and value != "":
                return value
    elif isinstance(d, list):
        for key in keys:
            if isinstance(key, int) and 0 <= key < len(d):
                value = d[key]
                if value is not None and value != "":
                    return value
    return None


def safe_string(d, key, default=None):
    value = _as_string(_get(d, key))
    return default if value is None else value


def safe_string_2(d, key1, key2, default=None):
    value = _as_string(_get(d, key1))
    if value is None:
        value = _as_string(_get(d, key2))
    return default if value is None else value


def safe_string_n(d, keys, default=None):
    value = _first(d, keys)
    if type(value) is str:
        return value
    if type(value) in (float, int):
        return str(value)
    return default


def _int(value, default):
    try:
        return int(float(value))  # "100.0" is 100, as ccxt
    except Exception:
        return default


def safe_integer(d, key, default=None):
    return _int(_get(d, key), default)


def safe_integer_2(d, key1, key2, default=None):
    value = _int(_get(d, key1), None)  # key2 when key1 is missing or not a number (as ccxt)
    return _int(_get(d, key2), default) if value is None else value


def safe_integer_n(d, keys, default=None):
    value = _first(d, keys)
    return default if value is None else _int(value, default)


def _float(value, default):
    try:
        return float(value)
    except Exception:
        return default


def safe_float(d, key, default=None):
    return _float(_get(d, key), default)


def safe_float_2(d, key1, key2, default=None):
    value = _float(_get(d, key1), None)
    return _float(_get(d, key2), default) if value is None else value


def safe_float_n(d, keys, default=None):
    value = _first(d, keys)
    return default if value is None else _float(value, default)


def safe_value(d, key, default=None):
    value = _get(d, key)
    return default if value is None or value == "" else value


def safe_value_2(d, key1, key2, default=None):
    value = safe_value(d, key1)
    return safe_value(d, key2, default) if value is None else value


def safe_value_n(d, keys, default=None):
    if d is None:
        return default
    value = _first(d, keys)
    return default if value is None else value


def _number(string, default):
    """ccxt's ``parse_number`` with its default ``number = float``."""
    if string is None:
        return default
    try:
        return float(string)
    except Exception:
        return default


def safe_number(d, key, default=None):
    return _number(safe_string(d, key), default)


def safe_number_2(d, key1, key2, default=None):
    return _number(safe_string_2(d, key1, key2), default)


def safe_number_n(d, keys, default=None):
    return _number(safe_string_n(d, keys), default)


# ------------------------------------------------------ dicts and lists


def sum(*args):  # noqa: A001  (ccxt's name)
    """The sum of the arguments that are numbers (None and the rest skipped)."""
    total = 0
    for arg in args:
        if isinstance(arg, (int, float)):
            total += arg
    return total


def omit(d, *keys):
    """``d`` without ``keys`` (each a key or a list of keys); a copy."""
    if not isinstance(d, dict):
        return d
    out = d.copy()
    for key in keys:
        for k in (key if type(key) is list else [key]):
            out.pop(k, None)
    return out


def extend(*args) -> dict:
    """The dicts merged left to right (later keys win); a new dict."""
    out: dict = collections.OrderedDict() if args and type(args[0]) is collections.OrderedDict else {}
    for arg in args:
        out.update(arg)
    return out


def deep_extend(*args):
    """As :func:`extend`, merging nested dicts too; a non-dict argument
    replaces everything before it."""
    result, is_dict = None, False
    for arg in args:
        if isinstance(arg, dict):
            if not is_dict:
                result, is_dict = {}, True
            for key, value in arg.items():
                current = result.get(key)
                result[key] = deep_extend(current, value) if isinstance(current, dict) and isinstance(value, dict) \
                    else value
        else:
            result, is_dict = arg, False
    return result


def to_array(value):
    return list(value.values()) if type(value) is dict else value


def index_by(array, key) -> dict:
    """``{item[key]: item}`` (items without the key left out; a dict's
    values taken in key order)."""
    if isinstance(array, dict):
        array = dict(sorted(array.items())).values()
    out = {}
    for item in array:
        k = (item[key] if key < len(item) else None) if isinstance(key, int) else item.get(key)
        if k is not None:
            out[k] = item
    return out


def group_by(array, key) -> dict:
    out = collections.defaultdict(list)
    for item in to_array(array):
        value = item.get(key)
        if value is not None:
            out[value].append(item)
    return out


def sort_by(array, key, descending: bool = False, default=0) -> list:
    """Sorted by ``item[key]``; None counts as ``default``."""
    array = list(array)
    try:
        return sorted(array, key=itemgetter(key), reverse=descending)
    except TypeError:
        return sorted(array, key=lambda x: default if x[key] is None else x[key], reverse=descending)


def filter_by(array, key, value=None) -> list:
    return [x for x in to_array(array) if x.get(key) == value]


def aggregate(bidasks) -> list:
    """[[price, amount]] with equal prices summed, zero amounts dropped."""
    ordered: dict = {}
    for price, volume, *_ in bidasks:
        if volume > 0:
            ordered[price] = ordered.get(price, 0) + volume
    return [[price, volume] for price, volume in ordered.items()]


#: the helpers :class:`~clients.ccxt._base.ExchangeBase` exposes as static methods
STATIC = (parse_timeframe, iso8601, parse8601, milliseconds, seconds, microseconds, safe_string, safe_string_2,
          safe_string_n, safe_integer, safe_integer_2, safe_integer_n, safe_float, safe_float_2, safe_float_n,
          safe_value, safe_value_2, safe_value_n, safe_number, safe_number_2, safe_number_n, sum, omit, extend,
          deep_extend, to_array, index_by, group_by, sort_by, filter_by, aggregate)
