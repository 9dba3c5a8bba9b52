// The reference client's walk through the protocol, one JSON line per step
// (tests/integration/test_node_client.py runs it against a real server):
//
//   node demo.mjs --orders tcp://127.0.0.1:5555 --market-data tcp://127.0.0.1:5556 \
//        --maker 1:demo-key-maker-1 --taker 3:demo-key-hunter-3
//
// login (limits from LoginOk) -> book sync (snapshot + deltas; one delta
// dropped on purpose to show gap detection and re-sync) -> the maker rests an
// ask -> the taker rests a bid and cancels it -> the taker crosses the ask and
// gets a Fill, the maker its Fill as a Push -> open orders and account ->
// history (own fills, ended orders, candles).

import { BookMirror, Session, field, int } from "./client.mjs";

function args(argv) {
  const out = {};
  for (let i = 2; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  for (const need of ["orders", "market-data", "maker", "taker"]) {
    if (!out[need]) throw new Error(`missing --${need}`);
  }
  return out;
}

const json = (v) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));
const say = (step, data) => console.log(json({ step, ...data }));
const SYMBOL = "BTC-PERP";

async function main() {
  const a = args(process.argv);
  const [makerId, makerKey] = a.maker.split(":");
  const [takerId, takerKey] = a.taker.split(":");
  const maker = new Session(a.orders);
  const taker = new Session(a.orders);
  const mirror = new BookMirror(SYMBOL, taker, a["market-data"]);
  try {
    const ok = await taker.login(Number(takerId), takerKey);
    await maker.login(Number(makerId), makerKey);
    say("login", {
      account: ok.account,
      protocol_version: ok.protocol_version,
      max_batch: field(ok, "max_batch", 0),
      max_frame_bytes: field(ok, "max_frame_bytes", 0),
      rate_limit_per_s: field(ok, "rate_limit_per_s", 0),
      rate_limit_burst: field(ok, "rate_limit_burst", 0),
      idempotency_window: field(ok, "idempotency_window", 0),
    });

    const [inst] = await taker.call({ msg: "QueryInstruments" });
    const btc = inst.instruments.find((i) => i.symbol === SYMBOL);
    const index = inst.assets.find((x) => x.name === "BTC").index_price;
    say("instruments", { tick_size: btc.tick_size, lot_size: btc.lot_size, btc_index_type: typeof index });

    // A BookHeartbeat proves the subscription is live; then snapshot + deltas.
    const hbDeadline = Date.now() + 5000;
    while (mirror.heartbeats === 0 && Date.now() < hbDeadline) await new Promise((r) => setTimeout(r, 10));
    if (mirror.heartbeats === 0) throw new Error("no BookHeartbeat within 5 s");
    await mirror.resync();
    say("synced", { seq: mirror.seq, bids: mirror.bids.size, asks: mirror.asks.size });

    const ask = 600_100; // ticks: $60,010.0 at tick 0.1
    const [askAck] = await maker.call({ msg: "NewOrder", account: Number(makerId), symbol: SYMBOL, side: "sell",
      qty: 50, price: ask, tif: "post_only", client_order_id: "node-ask-1" });
    await mirror.until((m) => m.asks.get(ask) === 50, "the maker's ask in the mirror");
    say("maker_ask", { order_id: askAck.order_id, best_ask: mirror.bestAsk(), seq: mirror.seq });

    // lose the next delta on purpose: the one after it shows the gap
    mirror.dropNextDelta = true;
    const bid = 599_000;
    const [bidAck] = await taker.call({ msg: "NewOrder", account: Number(takerId), symbol: SYMBOL, side: "buy",
      qty: 7, price: bid, client_order_id: "node-bid-1" });
    const resend = await taker.request({ msg: "NewOrder", account: Number(takerId), symbol: SYMBOL, side: "buy",
      qty: 7, price: bid, client_order_id: "node-bid-1" });
    say("resend", { duplicate: field(resend, "duplicate", false), first: resend.events[0].msg,
      order_id: field(resend.events[0], "order_id", null) });
    const cancel = await taker.call({ msg: "CancelOrder", account: Number(takerId), client_order_id: "node-bid-1" });
    const cancelled = cancel.find((e) => e.msg === "OrderCancelled");
    await mirror.until((m) => m.gaps >= 1 && !m.bids.has(bid), "gap detection and re-sync");
    say("cancel", { order_id: bidAck.order_id, cancelled: cancelled.order_id, cause: cancelled.cause,
      remaining: cancelled.remaining });
    say("gap", { gaps: mirror.gaps, why: mirror.lastGap, snapshots: mirror.snapshots, seq: mirror.seq,
      best_ask: mirror.bestAsk() });

    const hit = await taker.call({ msg: "NewOrder", account: Number(takerId), symbol: SYMBOL, side: "buy",
      qty: 20, price: ask, tif: "ioc" });
    const fill = hit.find((e) => e.msg === "Fill");
    const makerFill = await maker.waitPush((e) => e.msg === "Fill", "the maker's fill");
    await mirror.until((m) => m.asks.get(ask) === 30, "the ask reduced to 30 lots");
    say("fill", { price: fill.price, qty: fill.qty, liquidity: fill.liquidity, fee: fill.fee,
      position: field(fill, "position", 0), maker_liquidity: makerFill.liquidity, maker_qty: makerFill.qty,
      maker_remaining: makerFill.remaining, book_ask_left: mirror.asks.get(ask) });

    const [open] = await maker.call({ msg: "QueryOpenOrders", account: Number(makerId) });
    say("open_orders", { orders: open.orders.map((o) => ({ order_id: o.order_id, qty: o.qty, filled: o.filled,
      price: field(o, "price", null), client_order_id: field(o, "client_order_id", null),
      reduce_only: field(o, "reduce_only", false) })) });

    const [acct] = await taker.call({ msg: "QueryAccount", account: Number(takerId) });
    say("account", { account: acct.account, usdt: int(acct.balances.USDT),
      positions: acct.positions.map((p) => ({ symbol: p.symbol, qty: p.qty, entry_price: p.entry_price })),
      margin_mode: field(acct, "margin_mode", "cross"), equity_is_float: typeof acct.equity === "number" });

    // history: the taker's own fills, its ended orders, and the 1-minute candle the fill made
    const [mine] = await taker.call({ msg: "QueryMyTrades", account: Number(takerId), symbol: SYMBOL });
    const [ended] = await taker.call({ msg: "QueryOrderHistory", account: Number(takerId), symbol: SYMBOL });
    const [candles] = await taker.call({ msg: "QueryCandles", symbol: SYMBOL, interval: "1m" });
    const c = candles.candles[candles.candles.length - 1];
    say("history", {
      my_trades: mine.trades.map((t) => ({ order_id: t.order_id, price: t.price, qty: t.qty, fee: t.fee,
        ts_type: typeof t.ts })),
      ended: ended.orders.map((o) => ({ order_id: o.order_id, status: o.status, filled: field(o, "filled", 0),
        client_order_id: field(o, "client_order_id", null) })),
      candle: { open: c.open, close: c.close, volume: field(c, "volume", 0), trades: field(c, "trades", 0) },
    });

    const hbDeadline2 = Date.now() + 5000;
    while (taker.heartbeats.length === 0 && Date.now() < hbDeadline2) await new Promise((r) => setTimeout(r, 10));
    const hb = taker.heartbeats[0];
    if (!hb) throw new Error("no server Heartbeat within 5 s");
    say("heartbeat", { ts_type: typeof hb.ts, ts: hb.ts, seq: int(field(hb, "seq", 0)) });
    say("done", {});
  } finally {
    mirror.close();
    await maker.close();
    await taker.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(1);
  },
);
