"""Venue models (clients.models, human units) as Binance USD-M JSON: decimals
as strings, times in ms, Binance's field names and enum spellings."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal

from clients import models

NS_PER_MS = 1_000_000


def ms(ns: int | None) -> int:
    return 0 if not ns else ns // NS_PER_MS


def s(x) -> str:
    """A decimal as Binance writes it (plain, never exponent notation)."""
    if x is None:
        return "0"
    d = Decimal(x)
    return format(d, "f")


# --------------------------------------------------------------- symbols


class Symbols:
    """BTCUSDT <-> BTC-PERP (a dated future: BTCUSDT_YYMMDD, as Binance's delivery contracts)."""

    def __init__(self, mk: models.Markets):
        self.to_venue: dict[str, str] = {}
        self.to_binance: dict[str, str] = {}
        for ins in mk.instruments.values():
            b = f"{ins.underlying}{ins.settlement}"
            if ins.kind == "future" and ins.expiry_ns:
                b += "_" + _dt.datetime.fromtimestamp(ins.expiry_ns / 1e9, _dt.UTC).strftime("%y%m%d")
            self.to_venue[b] = ins.symbol
            self.to_binance[ins.symbol] = b

    def venue(self, binance: str) -> str | None:
        return self.to_venue.get(binance.upper())

    def binance(self, venue: str) -> str:
        return self.to_binance.get(venue, venue)


# ------------------------------------------------------------ enums

ORDER_TYPES = {  # Binance type -> venue type
    "LIMIT": "limit", "MARKET": "market", "STOP": "stop_limit", "STOP_MARKET": "stop_market",
    "TAKE_PROFIT": "take_profit_limit", "TAKE_PROFIT_MARKET": "take_profit_market",
    "TRAILING_STOP_MARKET": "trailing_stop_market",
}
BINANCE_TYPE = {v: k for k, v in ORDER_TYPES.items()}
TIF = {"GTC": "gtc", "IOC": "ioc", "FOK": "fok", "GTX": "post_only"}
BINANCE_TIF = {v: k for k, v in TIF.items()}
STATUS = {"new": "NEW", "untriggered": "NEW", "partially_filled": "PARTIALLY_FILLED", "filled": "FILLED",
          "cancelled": "CANCELED", "expired": "EXPIRED", "rejected": "REJECTED"}
WORKING = {"MARK_PRICE": "mark_price", "CONTRACT_PRICE": "contract_price"}
BINANCE_WORKING = {v: k for k, v in WORKING.items()}


def _decimals(step: Decimal) -> int:
    return max(0, -step.normalize().as_tuple().exponent)


# ----------------------------------------------------------- public


def exchange_info(mk: models.Markets, syms: Symbols, now_ms: int,
                  tiers: dict[str, tuple[models.LeverageTier, ...]]) -> dict:
    """Margin percents are the first leverage tier's rates; Binance's triggerProtect,
    liquidationFee and marketTakeBound are left out (the venue has no such per-symbol figures)."""
    symbols = []
    for ins in mk.instruments.values():
        perpetual = ins.kind != "future"
        first = tiers.get(ins.symbol, ())[:1]
        symbols.append({
            "symbol": syms.binance(ins.symbol), "pair": f"{ins.underlying}{ins.settlement}",
            "contractType": "PERPETUAL" if perpetual else "CURRENT_QUARTER",
            "deliveryDate": 4133404800000 if perpetual else ms(ins.expiry_ns), "onboardDate": 0,
            "status": {"trading": "TRADING", "pending": "PENDING_TRADING", "settled": "SETTLING"}.get(ins.state, "TRADING"),
            "maintMarginPercent": s(first[0].mm_rate * 100) if first else "0",
            "requiredMarginPercent": s(first[0].im_rate * 100) if first else "0",
            "baseAsset": ins.underlying, "quoteAsset": ins.settlement, "marginAsset": ins.settlement,
            "pricePrecision": _decimals(ins.tick_size), "quantityPrecision": _decimals(ins.lot_size),
            "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [],
            "settlePlan": 0,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": s(ins.tick_size), "maxPrice": "100000000",
                 "tickSize": s(ins.tick_size)},
                {"filterType": "LOT_SIZE", "minQty": s(ins.lot_size), "maxQty": s(ins.max_qty),
                 "stepSize": s(ins.lot_size)},
                {"filterType": "MARKET_LOT_SIZE", "minQty": s(ins.lot_size), "maxQty": s(ins.max_qty),
                 "stepSize": s(ins.lot_size)},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MIN_NOTIONAL", "notional": s(ins.min_notional)},
            ],
            "orderTypes": list(ORDER_TYPES), "timeInForce": list(TIF),
        })
    return {"timezone": "UTC", "serverTime": now_ms, "futuresType": "U_MARGINED",
            "rateLimits": [], "exchangeFilters": [],
            "assets": [{"asset": a, "marginAvailable": True, "autoAssetExchange": "0"} for a in mk.decimals],
            "symbols": symbols}


def depth(book: models.Book, now_ms: int) -> dict:
    return {"lastUpdateId": book.seq, "E": now_ms, "T": now_ms,
            "bids": [[s(p), s(q)] for p, q in book.bids], "asks": [[s(p), s(q)] for p, q in book.asks]}


def trade(t: models.Trade, mk: models.Markets) -> dict:
    return {"id": t.trade_id, "price": s(t.price), "qty": s(t.qty), "quoteQty": s(t.price * t.qty),
            "time": ms(t.ts), "isBuyerMaker": t.taker_side == "sell"}


def agg_trade(t: models.Trade) -> dict:
    # one venue trade is one aggregate trade (first = last = its id)
    return {"a": t.trade_id, "p": s(t.price), "q": s(t.qty), "f": t.trade_id, "l": t.trade_id,
            "T": ms(t.ts), "m": t.taker_side == "sell"}


def kline(c: models.Candle) -> list:
    # taker-buy volumes are not tracked by the venue: "0" (docs/binance-gateway.md)
    return [ms(c.open_time), s(c.open), s(c.high), s(c.low), s(c.close), s(c.volume), ms(c.close_time),
            s(c.quote_volume), c.trades, "0", "0", "0"]


def premium_index(p: models.PremiumIndex, syms: Symbols) -> dict:
    return {"symbol": syms.binance(p.symbol), "markPrice": s(p.mark), "indexPrice": s(p.index),
            "estimatedSettlePrice": s(p.index), "lastFundingRate": s(p.last_funding_rate),
            "interestRate": s(p.interest_rate), "nextFundingTime": ms(p.next_funding_time), "time": ms(p.ts)}


def ticker_24hr(t: models.Ticker, syms: Symbols) -> dict:
    return {"symbol": syms.binance(t.symbol), "priceChange": s(t.change), "priceChangePercent": s(t.percentage),
            "weightedAvgPrice": s(t.vwap), "lastPrice": s(t.last), "lastQty": s(t.last_qty),
            "openPrice": s(t.open), "highPrice": s(t.high), "lowPrice": s(t.low), "volume": s(t.volume),
            "quoteVolume": s(t.quote_volume), "openTime": ms(t.open_time), "closeTime": ms(t.close_time),
            "firstId": 0, "lastId": 0, "count": t.trades}


def ticker_price(t: models.Ticker, syms: Symbols) -> dict:
    return {"symbol": syms.binance(t.symbol), "price": s(t.last), "time": ms(t.close_time)}


def book_ticker(t: models.Ticker, syms: Symbols) -> dict:
    return {"symbol": syms.binance(t.symbol), "bidPrice": s(t.bid), "bidQty": s(t.bid_qty),
            "askPrice": s(t.ask), "askQty": s(t.ask_qty), "time": ms(t.close_time), "lastUpdateId": 0}


def funding_rate(f: models.FundingEntry, syms: Symbols) -> dict:
    return {"symbol": syms.binance(f.symbol), "fundingRate": s(f.rate), "fundingTime": ms(f.ts),
            "markPrice": s(f.mark)}


def brackets(lev: models.SymbolLeverage, syms: Symbols) -> dict:
    return {"symbol": syms.binance(lev.symbol), "notionalCoef": 1.0, "brackets": [
        {"bracket": t.bracket, "initialLeverage": t.max_leverage,
         "notionalCap": float(t.notional_cap) if t.notional_cap is not None else 9.223372036854776e18,
         "notionalFloor": float(t.notional_floor), "maintMarginRatio": float(t.mm_rate), "cum": float(t.mm_amount)}
        for t in lev.tiers]}


# ---------------------------------------------------------- private


def order(o: models.OrderRecord, syms: Symbols, *, working_type: str = "mark_price",
          close_position: bool = False) -> dict:
    """An order (POST/GET/DELETE /fapi/v1/order, openOrders, allOrders)."""
    typ = BINANCE_TYPE.get(o.type, o.type.upper())
    filled = o.filled
    cum_quote = (o.avg_price or 0) * filled
    return {"orderId": o.order_id, "symbol": syms.binance(o.symbol), "status": STATUS.get(o.status, o.status.upper()),
            "clientOrderId": o.client_order_id or "", "price": s(o.price or 0), "avgPrice": s(o.avg_price or 0),
            "origQty": s(o.qty), "executedQty": s(filled), "cumQty": s(filled), "cumQuote": s(cum_quote),
            "timeInForce": BINANCE_TIF.get(o.tif, o.tif.upper()), "type": typ, "origType": typ,
            "reduceOnly": o.reduce_only, "closePosition": close_position, "side": o.side.upper(),
            "positionSide": "BOTH", "stopPrice": s(o.stop_price or 0), "workingType": BINANCE_WORKING[working_type],
            "priceProtect": False, "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_TAKER",
            "goodTillDate": 0, "time": ms(o.time), "updateTime": ms(o.update_time or o.time)}


def user_trade(f: models.Fill, mk: models.Markets, syms: Symbols) -> dict:
    return {"symbol": syms.binance(f.symbol), "id": f.trade_id, "orderId": f.order_id, "side": f.side.upper(),
            "price": s(f.price), "qty": s(f.qty), "realizedPnl": s(f.realized_pnl), "marginAsset": mk.settlement,
            "quoteQty": s(f.price * f.qty), "commission": s(f.fee), "commissionAsset": mk.settlement,
            "time": ms(f.ts), "positionSide": "BOTH", "buyer": f.side == "buy", "maker": f.liquidity == "maker"}


MARGIN_TYPE = {"cross": "cross", "portfolio": "cross", "isolated": "isolated"}


def position_risk(p: models.Position | None, symbol: str, lev: models.SymbolLeverage | None, acct: models.AccountState,
                  syms: Symbols, v3: bool) -> dict:
    qty = p.qty if p else Decimal(0)
    out = {"symbol": syms.binance(symbol), "positionSide": "BOTH", "positionAmt": s(qty),
           "entryPrice": s(p.entry_price if p else 0), "breakEvenPrice": s(p.entry_price if p else 0),
           "markPrice": s(p.mark if p else 0), "unRealizedProfit": s(p.upnl if p else 0),
           # the venue liquidates by account margin, not at a per-position price: "0" (docs/binance-gateway.md)
           "liquidationPrice": "0", "isolatedMargin": "0",
           "notional": s(p.notional if p else 0), "isolatedWallet": "0", "updateTime": 0}
    if v3:
        out.update({"marginAsset": "USDT", "initialMargin": s(p.im if p else 0),
                    "maintMargin": s(p.mm if p else 0), "positionInitialMargin": s(p.im if p else 0),
                    "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0", "askNotional": "0"})
    else:
        out.update({"leverage": str(lev.leverage if lev else 20),
                    "maxNotionalValue": s(lev.tiers[0].notional_cap if lev and lev.tiers and lev.tiers[0].notional_cap else 0),
                    "marginType": MARGIN_TYPE.get(acct.margin_mode, "cross"), "isAutoAddMargin": "false"})
    return out


def account(acct: models.AccountState, mk: models.Markets, syms: Symbols,
            levs: dict[str, models.SymbolLeverage], v3: bool, now_ms: int) -> dict:
    """``updateTime`` is the time of the reading (the venue keeps no per-asset
    change time; ccxt skips an asset whose updateTime is 0 as uninitialised)."""
    settle = mk.settlement
    upnl = sum((p.upnl for p in acct.positions), Decimal(0))
    wallet = acct.balances.get(settle, Decimal(0))
    pos_im = sum((p.im for p in acct.positions), Decimal(0))
    assets = []
    for a, bal in acct.balances.items():
        main = a == settle
        assets.append({"asset": a, "walletBalance": s(bal), "unrealizedProfit": s(upnl if main else 0),
                       "marginBalance": s(bal + (upnl if main else 0)), "maintMargin": s(acct.mm if main else 0),
                       "initialMargin": s(acct.im if main else 0), "positionInitialMargin": s(pos_im if main else 0),
                       "openOrderInitialMargin": s(acct.im - pos_im if main else 0),
                       "crossWalletBalance": s(bal), "crossUnPnl": s(upnl if main else 0),
                       "availableBalance": s(acct.free if main else bal), "maxWithdrawAmount": s(acct.free if main else bal),
                       "marginAvailable": True, "updateTime": now_ms})
    positions = []
    for p in acct.positions:
        row = {"symbol": syms.binance(p.symbol), "positionSide": "BOTH", "positionAmt": s(p.qty),
               "unrealizedProfit": s(p.upnl), "isolatedMargin": "0", "notional": s(p.notional),
               "isolatedWallet": "0", "initialMargin": s(p.im), "maintMargin": s(p.mm), "updateTime": 0}
        if not v3:
            lev = levs.get(p.symbol)
            row.update({"leverage": str(lev.leverage if lev else 20), "entryPrice": s(p.entry_price),
                        "breakEvenPrice": s(p.entry_price), "isolated": acct.margin_mode == "isolated",
                        "positionInitialMargin": s(p.im), "openOrderInitialMargin": "0", "maxNotional": "0",
                        "bidNotional": "0", "askNotional": "0"})
        positions.append(row)
    out = {"totalInitialMargin": s(acct.im), "totalMaintMargin": s(acct.mm), "totalWalletBalance": s(wallet),
           "totalUnrealizedProfit": s(upnl), "totalMarginBalance": s(acct.equity),
           "totalPositionInitialMargin": s(pos_im), "totalOpenOrderInitialMargin": s(acct.im - pos_im),
           "totalCrossWalletBalance": s(wallet), "totalCrossUnPnl": s(upnl), "availableBalance": s(acct.free),
           "maxWithdrawAmount": s(acct.free), "assets": assets, "positions": positions}
    if not v3:
        out = {"feeTier": 0, "feeBurn": False, "canTrade": True, "canDeposit": True, "canWithdraw": True,
               "updateTime": 0, "multiAssetsMargin": acct.margin_mode == "portfolio", "tradeGroupId": -1, **out}
    return out


def balance(acct: models.AccountState, mk: models.Markets, alias: str, now_ms: int) -> list[dict]:
    upnl = sum((p.upnl for p in acct.positions), Decimal(0))
    return [{"accountAlias": alias, "asset": a, "balance": s(bal), "crossWalletBalance": s(bal),
             "crossUnPnl": s(upnl if a == mk.settlement else 0),
             "availableBalance": s(acct.free if a == mk.settlement else bal),
             "maxWithdrawAmount": s(acct.free if a == mk.settlement else bal), "marginAvailable": True,
             "updateTime": now_ms} for a, bal in acct.balances.items()]


def algo_status(o: models.OrderRecord) -> str:
    """Binance's algo-order status of a conditional order's venue record."""
    if o.status in ("new", "partially_filled"):
        return "TRIGGERED" if o.triggered else "NEW"
    if o.status == "filled" or o.triggered:
        return "FINISHED"
    return {"cancelled": "CANCELED", "expired": "EXPIRED", "rejected": "REJECTED"}.get(o.status, "NEW")


def algo_order(o: models.OrderRecord, syms: Symbols, *, working_type: str = "mark_price",
               close_position: bool = False) -> dict:
    """A conditional order as Binance's algo-order API shows it (POST/GET/DELETE
    /fapi/v1/algoOrder): ``algoId`` is the venue order id."""
    return {"algoId": o.order_id, "clientAlgoId": o.client_order_id or "", "algoType": "CONDITIONAL",
            "orderType": BINANCE_TYPE.get(o.type, o.type.upper()), "symbol": syms.binance(o.symbol),
            "side": o.side.upper(), "positionSide": "BOTH", "timeInForce": BINANCE_TIF.get(o.tif, o.tif.upper()),
            "quantity": s(o.qty), "algoStatus": algo_status(o), "triggerPrice": s(o.stop_price or 0),
            "price": s(o.price or 0), "icebergQuantity": None, "selfTradePreventionMode": "EXPIRE_TAKER",
            "workingType": BINANCE_WORKING[working_type], "priceMatch": "NONE", "closePosition": close_position,
            "priceProtect": False, "reduceOnly": o.reduce_only, "createTime": ms(o.time),
            "updateTime": ms(o.update_time or o.time), "triggerTime": ms(o.update_time) if o.triggered else 0,
            "goodTillDate": 0}
