// exchange-sim venue view: one EventSource, plain DOM and SVG, no build step.
// The bridge (exchange_sim/web/bridge.py) sends named server-sent events:
//   hello {symbols, thresholds, mode, account, can_choose_account}
//   status {connected, state: connecting|connected|unreachable, message}          book {symbol, bids, asks, mark, index, best_bid, best_ask}
//   trade {symbol, t, side, price, qty, liquidation}
//   account {account, mode, equity, im, mm, ratio, assets, positions, compare, t}
//   liquidation {n, account, step, symbol, qty, price, impact, ratio_after}
//   fund {balance}                       replay {position, total, playing}
"use strict";
const $ = (id) => document.getElementById(id);
const state = { symbol: null, books: {}, trades: [], ratio: [], thresholds: {}, account: null };
const fmt = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x)) ? "–"
  : Number(x).toLocaleString(undefined, { minimumFractionDigits: d, maximumFractionDigits: d });
const pct = (r) => (r === null || r === undefined) ? "∞" : (r * 100).toFixed(1) + "%";
const svgns = "http://www.w3.org/2000/svg";
function el(tag, attrs, text) {
  const e = document.createElementNS(svgns, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function rows(tbody, list, cells, cls) {
  tbody.replaceChildren(...list.map((item) => {
    const tr = document.createElement("tr");
    if (cls) tr.className = cls(item);
    for (const c of cells(item)) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
    return tr;
  }));
}

// ------------------------------------------------------------------ market
function drawDepth() {
  const svg = $("depth"), b = state.books[state.symbol];
  svg.replaceChildren();
  if (!b) return;
  const W = 600, H = 240;
  let cum = 0; const bids = b.bids.map(([p, q]) => [p, cum += q]);
  cum = 0; const asks = b.asks.map(([p, q]) => [p, cum += q]);
  const prices = [...bids, ...asks].map((x) => x[0]).concat(b.mark ? [b.mark] : []);
  if (!prices.length) { svg.appendChild(el("text", { x: 20, y: 30 }, "empty book")); return; }
  const lo = Math.min(...prices), hi = Math.max(...prices), span = (hi - lo) || 1;
  const top = Math.max(bids.length ? bids[bids.length - 1][1] : 0, asks.length ? asks[asks.length - 1][1] : 0) || 1;
  const X = (p) => 10 + (p - lo) / span * (W - 20), Y = (q) => H - 15 - q / top * (H - 30);
  const step = (pts, dir) => {
    if (!pts.length) return "";
    let d = `M${X(pts[0][0])},${H - 15}`;
    let prevQ = 0;
    for (const [p, q] of pts) { d += ` L${X(p)},${Y(prevQ)} L${X(p)},${Y(q)}`; prevQ = q; }
    const end = dir < 0 ? 10 : W - 10;
    return d + ` L${end},${Y(prevQ)} L${end},${H - 15} Z`;
  };
  svg.appendChild(el("path", { d: step(bids, -1), fill: "#1a985033", stroke: "#1a9850", class: "depth-bids" }));
  svg.appendChild(el("path", { d: step(asks, 1), fill: "#d7302733", stroke: "#d73027", class: "depth-asks" }));
  if (b.mark) {
    svg.appendChild(el("line", { x1: X(b.mark), x2: X(b.mark), y1: 5, y2: H - 15, stroke: "#555", "stroke-dasharray": "4 3" }));
    svg.appendChild(el("text", { x: X(b.mark) + 4, y: 16, "font-size": 11 }, "mark " + fmt(b.mark, 2)));
  }
  svg.appendChild(el("text", { x: 12, y: H - 2, "font-size": 11 }, fmt(lo, 2)));
  svg.appendChild(el("text", { x: W - 80, y: H - 2, "font-size": 11 }, fmt(hi, 2)));
  svg.dataset.bidLevels = b.bids.length; svg.dataset.askLevels = b.asks.length;
}
function showMarket() {
  const b = state.books[state.symbol] || {};
  $("mkt-symbol").textContent = state.symbol || "";
  $("q-bid").textContent = fmt(b.best_bid); $("q-ask").textContent = fmt(b.best_ask);
  $("q-mark").textContent = fmt(b.mark); $("q-index").textContent = fmt(b.index);
  drawDepth();
  const trades = state.trades.filter((t) => t.symbol === state.symbol).slice(-60).reverse();
  rows($("tape").tBodies[0], trades,
    (t) => [new Date(t.t / 1e6).toLocaleTimeString(), t.side, fmt(t.price), t.qty, t.liquidation ? "liquidation" : ""],
    (t) => t.side + (t.liquidation ? " liq" : ""));
}

// ----------------------------------------------------------------- account
function drawRatio() {
  const svg = $("ratio"); svg.replaceChildren();
  const W = 600, H = 180, pts = state.ratio.filter((p) => p.r !== null);
  const th = state.thresholds;
  const ceil = Math.max(2, ...(pts.length ? pts.map((p) => Math.min(p.r, 10)) : [2]), (th.warning || 1.5) * 1.2);
  const Y = (r) => H - 10 - Math.max(0, Math.min(r, ceil)) / ceil * (H - 20);
  for (const [name, v, color] of [["warning", th.warning, "#f59e0b"], ["reduce-only", th.reduce_only, "#f97316"], ["liquidation", th.liquidation, "#d73027"]]) {
    if (v === undefined) continue;
    svg.appendChild(el("line", { x1: 0, x2: W, y1: Y(v), y2: Y(v), stroke: color, "stroke-dasharray": "5 4", class: "threshold" }));
    svg.appendChild(el("text", { x: 4, y: Y(v) - 3, "font-size": 10, fill: color }, `${name} ${v}`));
  }
  if (pts.length < 2) return;
  // x = venue time; a journal written without clock (all t equal) falls back to step order
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t, byIdx = t1 === t0;
  const span = byIdx ? pts.length - 1 : t1 - t0;
  const d = pts.map((p, i) => `${i ? "L" : "M"}${((byIdx ? i : p.t - t0) / span) * (W - 10) + 5},${Y(p.r)}`).join(" ");
  svg.appendChild(el("path", { d, fill: "none", stroke: "#2563eb", "stroke-width": 2 }));
}
function drawModes(compare) {
  const svg = $("modes"); svg.replaceChildren();
  if (!compare || !compare.length) return;
  const W = 600, rowH = 40, top = Math.max(...compare.map((c) => Math.max(c.im, c.usable_collateral))) || 1;
  compare.forEach((c, i) => {
    const y = 8 + i * rowH, X = (v) => Math.max(0, v) / top * (W - 200);
    svg.appendChild(el("text", { x: 4, y: y + 14, "font-size": 12 }, c.mode));
    svg.appendChild(el("rect", { x: 80, y, width: X(c.usable_collateral), height: 12, fill: "#93c5fd" }));
    svg.appendChild(el("rect", { x: 80, y: y + 14, width: X(c.im), height: 12, fill: "#f87171", class: "mode-im" }));
    svg.appendChild(el("text", { x: 84 + X(Math.max(c.usable_collateral, c.im)), y: y + 22, "font-size": 11 },
      `IM ${fmt(c.im, 0)} · idle ${fmt(c.free, 0)}`));
  });
}
function showAccount(a) {
  state.account = a;
  $("acct-id").textContent = a.account; $("acct-mode").textContent = a.mode + " margin";
  $("f-equity").textContent = fmt(a.equity); $("f-im").textContent = fmt(a.im);
  $("f-mm").textContent = fmt(a.mm); $("f-ratio").textContent = pct(a.ratio);
  rows($("assets").tBodies[0], a.assets, (x) => [x.asset, fmt(x.value), fmt(x.haircut), fmt(x.counted)]);
  rows($("positions").tBodies[0], a.positions, (p) => [p.symbol, fmt(p.notional), fmt(p.upnl), fmt(p.cross_mm), fmt(p.impact)]);
  state.ratio.push({ t: a.t, r: a.ratio }); if (state.ratio.length > 600) state.ratio.shift();
  drawRatio(); drawModes(a.compare);
}

// -------------------------------------------------------------- liquidation
function addLiquidation(s) {
  const tbody = $("cascade-table").tBodies[0], tr = document.createElement("tr");
  tr.className = "step-" + s.step;
  for (const c of [s.n, s.account, s.step, s.symbol || "", s.qty ?? "", s.price === null ? "" : fmt(s.price), s.impact === null ? "" : fmt(s.impact), s.ratio_after === undefined ? "" : pct(s.ratio_after)]) {
    const td = document.createElement("td"); td.textContent = c; tr.appendChild(td);
  }
  tbody.appendChild(tr);
  while (tbody.rows.length > 500) tbody.deleteRow(0);
}

// ------------------------------------------------------------------ stream
let source = null;
function connect() {
  source = new EventSource("events");
  source.addEventListener("hello", (e) => {
    const h = JSON.parse(e.data);
    state.thresholds = h.thresholds;
    const sel = $("symbol"); sel.replaceChildren(...h.symbols.map((s) => new Option(s, s)));
    state.symbol = state.symbol && h.symbols.includes(state.symbol) ? state.symbol : h.symbols[0];
    sel.value = state.symbol;
    $("account").value = h.account; $("account").disabled = !h.can_choose_account;
    $("mode-badge").textContent = h.mode === "replay" ? "replay of " + h.source : "live: " + h.source;
    $("replay").classList.toggle("hidden", h.mode !== "replay");
  });
  source.addEventListener("status", (e) => {
    const s = JSON.parse(e.data);
    $("conn").textContent = { connected: "connected", connecting: "connecting…", unreachable: "venue unreachable" }[s.state];
    $("conn").className = "conn " + (s.connected ? "up" : "down");
    $("banner").textContent = s.message || ""; $("banner").classList.toggle("hidden", !s.message);
  });
  source.addEventListener("book", (e) => { const b = JSON.parse(e.data); state.books[b.symbol] = b; if (b.symbol === state.symbol) showMarket(); });
  source.addEventListener("trade", (e) => { state.trades.push(JSON.parse(e.data)); if (state.trades.length > 2000) state.trades.splice(0, 1000); showMarket(); });
  source.addEventListener("account", (e) => showAccount(JSON.parse(e.data)));
  source.addEventListener("liquidation", (e) => addLiquidation(JSON.parse(e.data)));
  source.addEventListener("fund", (e) => { $("fund").textContent = fmt(JSON.parse(e.data).balance) + " USDT"; });
  source.addEventListener("replay", (e) => {
    const r = JSON.parse(e.data);
    $("rp-slider").max = r.total; $("rp-slider").value = r.position; $("rp-pos").textContent = `${r.position} / ${r.total}`;
  });
  source.addEventListener("reset", () => {
    state.trades = []; state.ratio = []; state.books = {};
    $("cascade-table").tBodies[0].replaceChildren(); showMarket();
  });
  source.onerror = () => { $("conn").textContent = "bridge unreachable, retrying…"; $("conn").className = "conn down"; };
}
const post = (path, body) => fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body || {}) });
$("symbol").addEventListener("change", (e) => { state.symbol = e.target.value; showMarket(); });
$("account").addEventListener("change", (e) => { state.ratio = []; post("api/account", { account: Number(e.target.value) }); });
$("rp-play").addEventListener("click", () => post("api/replay", { action: "play" }));
$("rp-pause").addEventListener("click", () => post("api/replay", { action: "pause" }));
$("rp-step").addEventListener("click", () => post("api/replay", { action: "step" }));
$("rp-slider").addEventListener("change", (e) => post("api/replay", { action: "seek", position: Number(e.target.value) }));
connect();
