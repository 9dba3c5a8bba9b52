"""Binance's error bodies: HTTP status + ``{"code": -2019, "msg": "..."}``,
and the one table mapping the venue's reject reasons to Binance's codes
(codes and texts from Binance's USD-M futures "Error Codes" page)."""

from __future__ import annotations

from protocol.messages import RejectReason as R


class BinanceError(Exception):
    """An error answered as Binance answers it."""

    def __init__(self, code: int, msg: str, status: int = 400):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict:
        return {"code": self.code, "msg": self.msg}


# reason -> (code, Binance's text or None to pass the venue's own readable message, HTTP status)
REJECT_CODES: dict[R, tuple[int, str | None, int]] = {
    R.MALFORMED: (-1100, None, 400),
    R.INVALID_FIELD: (-1130, None, 400),
    R.NOT_LOGGED_IN: (-2015, "Invalid API-key, IP, or permissions for action.", 401),
    R.AUTH_FAILED: (-2015, "Invalid API-key, IP, or permissions for action.", 401),
    R.NOT_ALLOWED: (-2015, "Invalid API-key, IP, or permissions for action.", 401),
    R.RATE_LIMITED: (-1003, None, 429),
    R.UNKNOWN_ACCOUNT: (-2015, "Invalid API-key, IP, or permissions for action.", 401),
    R.UNKNOWN_ASSET: (-4000, None, 400),
    R.UNKNOWN_SYMBOL: (-1121, "Invalid symbol.", 400),
    R.SYMBOL_PAUSED: (-4140, "Invalid symbol status for opening position.", 400),
    R.NOT_TRADING: (-4140, "Invalid symbol status for opening position.", 400),
    R.BAD_TICK: (-4014, "Price not increased by tick size.", 400),
    R.BAD_LOT: (-4023, "Qty not increased by step size.", 400),
    R.BELOW_MIN_NOTIONAL: (-4164, None, 400),
    R.ABOVE_MAX_QTY: (-4005, "Quantity greater than max quantity.", 400),
    R.OUTSIDE_PRICE_BAND: (-4131, "The counterparty's best price does not meet the PERCENT_PRICE filter limit.", 400),
    R.NO_MARK_PRICE: (-1000, None, 400),
    R.MISSING_PRICE: (-1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.", 400),
    R.MISSING_STOP_PRICE: (-1102, "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed.", 400),
    R.INSUFFICIENT_MARGIN: (-2019, "Margin is insufficient.", 400),
    R.INSUFFICIENT_BALANCE: (-2019, "Margin is insufficient.", 400),
    R.POST_ONLY_WOULD_CROSS: (-5022, "Due to the order could not be executed as maker, the Post Only order will be "
                                     "rejected. The order will not be recorded in the order history", 400),
    R.FOK_NOT_FILLABLE: (-5021, "Due to the order could not be filled immediately, the FOK order has been rejected. "
                                "The order will not be recorded in the order history", 400),
    R.REDUCE_ONLY_WOULD_INCREASE: (-2022, "ReduceOnly Order is rejected.", 400),
    R.REDUCE_ONLY_MODE: (-2022, "ReduceOnly Order is rejected.", 400),
    R.NO_LIQUIDITY: (-2020, "Unable to fill.", 400),
    R.UNKNOWN_ORDER: (-2011, "Unknown order sent.", 400),
    R.DUPLICATE_CLIENT_ORDER_ID: (-4116, "ClientOrderId is duplicated.", 400),
    R.TOO_MANY_OPEN_ORDERS: (-2025, "Reach max open order limit.", 400),
    R.SELF_TRADE_PREVENTED: (-2010, None, 400),
    R.NOTHING_TO_AMEND: (-5027, "No need to modify the order.", 400),
    R.MARGIN_MODE_CHANGE_DENIED: (-4048, "Margin type cannot be changed if there exists position.", 400),
    R.LEVERAGE_ABOVE_MAX: (-4028, None, 400),
    R.LEVERAGE_INSUFFICIENT_MARGIN: (-2028, "Leverage is smaller than permitted: insufficient margin balance.", 400),
    R.INTERNAL: (-1000, None, 500),
}


def for_reason(reason: R | None, message: str) -> BinanceError:
    """The Binance error for a venue reject (unmapped: -1000 with the venue's message)."""
    code, text, status = REJECT_CODES.get(reason, (-1000, None, 400)) if reason is not None else (-1000, None, 400)
    return BinanceError(code, text or message, status)


def unknown_order() -> BinanceError:
    """A query for an order the account does not have (Binance -2013, not the cancel's -2011)."""
    return BinanceError(-2013, "Order does not exist.")


def mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def invalid(name: str) -> BinanceError:
    return BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")


def not_read(read: list[str], sent: list[str]) -> BinanceError:
    """Binance -1104: a parameter the endpoint does not take (named, never ignored)."""
    return BinanceError(-1104, f"Not all sent parameters were read; read '{len(read)}' parameter(s) but was sent "
                               f"'{len(sent)}'. Unknown: {', '.join(sorted(set(sent) - set(read)))}.")
