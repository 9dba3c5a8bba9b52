// exchange-sim venue view: one EventSource, plain DOM and SVG, no build step.
// The bridge (exchange_sim/web/bridge.py) sends named server-sent events:
//   hello {symbols, thresholds, mode, account, can_choose_account}
//   status {connected, state: connecting|connected|unreachable, message}
//   book {symbol, bids, asks, mark, index, best_bid, best_ask}
//   trade {symbol, t, side, price, qty, liquidation}
//   account {account, mode, equity, im, mm, ratio, assets, positions, compare, t} or {account, missing}
//   liquidation {n, t, account, step, symbol, qty, price, impact, ratio_after, group}
//   liqgroup {group, account, symbol, ratio_before, ratio_after, done, steps, fund_took, fund_paid, adl}
//   fund {balance}                       replay {position, total, playing}
"use strict";
const $ = (id) => document.getElementById(id);
const state = { symbol: null, books: {}, trades: [], ratio: [], thresholds: {}, account: null };
const fmt = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x)) ? "–"
  : Number(x).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });

// A margin ratio as a person reads it: exactly protocol.units.ratio_text (Python's
// f"{r * 100:,.1f}%", "no positions" for None/∞). toFixed rounds the exact binary
// value like Python does, except on exact ties (x.25, x.75), where Python rounds
// half to even and toFixed away from zero: those are rounded here by hand.
function ratioText(r) {
  if (r === null || r === undefined || r === Infinity || r === -Infinity) return "no positions";
  if (Number.isNaN(r)) return "nan%";
  const p = r * 100, neg = p < 0 || Object.is(p, -0), a = Math.abs(p);
  let s;
  if (a >= 1e21) s = BigInt(a).toString() + ".0";  // toFixed turns exponential there; a is an integer
  else if (Number.isInteger(a * 4) && (a * 4) % 2 === 1) {
    const n = a * 10, lo = Math.floor(n), d = lo % 2 === 0 ? lo : lo + 1;
    s = `${Math.floor(d / 10)}.${d % 10}`;
  } else s = a.toFixed(1);
  const [i, f] = s.split(".");
  return (neg ? "-" : "") + i.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "." + f + "%";
}

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
// Keep a text inside [x0, x1] of its chart: flip it to the other side of its anchor when it would stick out.
function keepInside(text, x0, x1, anchorX, gap) {
  const b = text.getBBox();
  if (b.x + b.width > x1) { text.setAttribute("text-anchor", "end"); text.setAttribute("x", anchorX - gap); }
  const c = text.getBBox();
  if (c.x < x0) { text.setAttribute("text-anchor", "start"); text.setAttribute("x", x0); }
}
const FONT = 13;  // chart text, in viewBox units (the charts are ~600 wide on a projector-sized card)

// ------------------------------------------------------------------ market
function drawDepth() {
  const svg = $("depth"), b = state.books[state.symbol];
  svg.replaceChildren();
  if (!b) return;
  const W = 600, H = 260, L = 62, R = 590, T = 24, B = H - 40;
  let cum = 0; const bids = b.bids.map(([p, q]) => [p, cum += q]);
  cum = 0; const asks = b.asks.map(([p, q]) => [p, cum += q]);
  svg.appendChild(el("text", { x: (L + R) / 2, y: H - 4, "font-size": FONT, "text-anchor": "middle", class: "axis-title" }, "price (USDT)"));
  svg.appendChild(el("text", { x: 14, y: (T + B) / 2, "font-size": FONT, "text-anchor": "middle", class: "axis-title",
    transform: `rotate(-90 14 ${(T + B) / 2})` }, "cumulative qty"));
  const prices = [...bids, ...asks].map((x) => x[0]).concat(b.mark ? [b.mark] : []);
  svg.dataset.bidLevels = b.bids.length; svg.dataset.askLevels = b.asks.length;
  if (!prices.length) { svg.appendChild(el("text", { x: L + 10, y: T + 20, "font-size": FONT }, "empty book")); return; }
  let lo = Math.min(...prices), hi = Math.max(...prices);
  const pad = ((hi - lo) || hi * 0.01 || 1) * 0.03; lo -= pad; hi += pad;
  const span = hi - lo;
  const top = Math.max(bids.length ? bids[bids.length - 1][1] : 0, asks.length ? asks[asks.length - 1][1] : 0) || 1;
  const X = (p) => L + (p - lo) / span * (R - L), Y = (q) => B - q / top * (B - T);
  svg.appendChild(el("line", { x1: L, x2: R, y1: B, y2: B, stroke: "#999" }));
  svg.appendChild(el("line", { x1: L, x2: L, y1: T, y2: B, stroke: "#999" }));
  const empty = !bids.length && !asks.length;
  if (empty) svg.appendChild(el("text", { x: L + 10, y: T + 30, "font-size": FONT, fill: "#777" }, "no resting orders"));
  else for (const q of [0, top / 2, top]) {
    svg.appendChild(el("text", { x: L - 4, y: Y(q) + 4, "font-size": FONT - 1, "text-anchor": "end" }, fmt(q, top < 10 ? 2 : 0)));
  }
  const step = (pts, dir) => {
    if (!pts.length) return "";
    let d = `M${X(pts[0][0])},${B}`;
    let prevQ = 0;
    for (const [p, q] of pts) { d += ` L${X(p)},${Y(prevQ)} L${X(p)},${Y(q)}`; prevQ = q; }
    const end = dir < 0 ? L : R;
    return d + ` L${end},${Y(prevQ)} L${end},${B} Z`;
  };
  svg.appendChild(el("path", { d: step(bids, -1), fill: "#1a985033", stroke: "#1a9850", class: "depth-bids" }));
  svg.appendChild(el("path", { d: step(asks, 1), fill: "#d7302733", stroke: "#d73027", class: "depth-asks" }));
  const ticks = empty ? [] : [[lo + pad, "start"], [(lo + hi) / 2, "middle"], [hi - pad, "end"]];
  for (const [p, anchor] of ticks) {
    svg.appendChild(el("text", { x: X(p), y: B + 15, "font-size": FONT - 1, "text-anchor": anchor }, fmt(p, 2)));
  }
  if (b.mark) {
    svg.appendChild(el("line", { x1: X(b.mark), x2: X(b.mark), y1: T - 6, y2: B, stroke: "#444", "stroke-dasharray": "4 3" }));
    const label = el("text", { x: X(b.mark) + 4, y: T - 8, "font-size": FONT, class: "mark-label" }, "mark " + fmt(b.mark, 2));
    svg.appendChild(label);
    keepInside(label, 2, W - 2, X(b.mark), 4);
  }
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
// Margin ratio over time on a log scale: 100% (liquidation) and 1,000% are as far
// apart as 10% and 100%, so both a healthy and a sinking account stay readable.
function drawRatio() {
  const svg = $("ratio"); svg.replaceChildren();
  const W = 600, H = 220, L = 70, R = 440, T = 10, B = H - 34;
  const pts = state.ratio.filter((p) => p.r !== null && p.r !== undefined);
  const th = state.thresholds;
  const lines = [["warning", th.warning, "#b45309"], ["reduce-only", th.reduce_only, "#ea580c"], ["liquidation", th.liquidation, "#d73027"]]
    .filter(([, v]) => v !== undefined && v > 0);
  const rs = pts.map((p) => p.r).filter((r) => r > 0);
  const lo = Math.max(0.05, Math.min(0.5, ...rs.map((r) => r / 1.3), ...lines.map(([, v]) => v / 1.5)));
  const hi = Math.min(1e5, Math.max(3, ...rs.map((r) => r * 1.3), ...lines.map(([, v]) => v * 2)));
  const Y = (r) => B - (Math.log(Math.min(hi, Math.max(lo, r))) - Math.log(lo)) / (Math.log(hi) - Math.log(lo)) * (B - T);
  svg.dataset.scale = "log"; svg.dataset.lo = lo; svg.dataset.hi = hi;
  // grid: 1, 2, 5 per decade; labels where they fit, powers of ten first
  const labelled = [];
  for (const k of [1, 2, 5]) {
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      const v = k * 10 ** e;
      if (v < lo || v > hi) continue;
      svg.appendChild(el("line", { x1: L, x2: R, y1: Y(v), y2: Y(v), stroke: "#e5e7eb" }));
      if (labelled.some((y) => Math.abs(y - Y(v)) < FONT + 2)) continue;
      labelled.push(Y(v));
      svg.appendChild(el("text", { x: L - 5, y: Y(v) + 4, "font-size": FONT - 1, "text-anchor": "end", class: "tick" }, ratioText(v)));
    }
  }
  svg.appendChild(el("line", { x1: L, x2: L, y1: T, y2: B, stroke: "#999" }));
  svg.appendChild(el("line", { x1: L, x2: R, y1: B, y2: B, stroke: "#999" }));
  svg.appendChild(el("text", { x: 12, y: (T + B) / 2, "font-size": FONT, "text-anchor": "middle", class: "axis-title",
    transform: `rotate(-90 12 ${(T + B) / 2})` }, "equity / MM (log)"));
  svg.appendChild(el("text", { x: (L + R) / 2, y: H - 4, "font-size": FONT, "text-anchor": "middle", class: "axis-title" }, "venue time"));
  // threshold labels right of the plot, pushed apart so close thresholds (100%, 120%, 150%) stay legible
  const GAP = FONT + 2, placed = lines.map(([name, v, color]) => ({ name, v, color, y: Y(v) })).sort((a, b) => b.y - a.y);
  for (let i = 1; i < placed.length; i++) placed[i].y = Math.min(placed[i].y, placed[i - 1].y - GAP);
  const over = T + FONT - Math.min(T + FONT, ...placed.map((p) => p.y));
  for (const p of placed) p.y += over;  // pushed past the top: shift the stack down
  for (let i = 1; i < placed.length; i++) placed[i].y = Math.min(placed[i].y, placed[i - 1].y - GAP);
  for (const p of placed) {
    svg.appendChild(el("line", { x1: L, x2: R, y1: Y(p.v), y2: Y(p.v), stroke: p.color, "stroke-dasharray": "6 4", class: "threshold" }));
    svg.appendChild(el("polyline", { points: `${R},${Y(p.v)} ${R + 8},${p.y} ${R + 12},${p.y}`, fill: "none", stroke: p.color }));
    svg.appendChild(el("text", { x: R + 14, y: p.y + 4, "font-size": FONT, fill: p.color, class: "threshold-label" },
      `${p.name} ${ratioText(p.v)}`));
  }
  if (!pts.length) {
    svg.appendChild(el("text", { x: (L + R) / 2, y: B - 12, "font-size": FONT, "text-anchor": "middle", fill: "#777" },
      state.account && state.account.missing ? "" : "no positions: no ratio to plot"));
    return;
  }
  // x = venue time; a journal written without clock (all t equal) falls back to step order
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t, byIdx = t1 === t0;
  const span = (byIdx ? pts.length - 1 : t1 - t0) || 1;
  const Xi = (p, i) => L + ((byIdx ? i : p.t - t0) / span) * (R - L);
  if (pts.length > 1) {
    const d = pts.map((p, i) => `${i ? "L" : "M"}${Xi(p, i)},${Y(p.r)}`).join(" ");
    svg.appendChild(el("path", { d, fill: "none", stroke: "#2563eb", "stroke-width": 2.5, class: "ratio-line" }));
  }
  const last = pts[pts.length - 1], latest = state.ratio[state.ratio.length - 1];
  if (latest && (latest.r === null || latest.r === undefined)) {  // closed out since: say so, do not leave the old point as "now"
    svg.appendChild(el("text", { x: R, y: T + FONT, "font-size": FONT, "text-anchor": "end", fill: "#555", class: "ratio-now" }, "now: no positions"));
  }
  svg.appendChild(el("circle", { cx: Xi(last, pts.length - 1), cy: Y(last.r), r: 3.5, fill: "#2563eb" }));
  if (!byIdx) {
    const clock = (t) => new Date(t / 1e6).toLocaleTimeString("en-GB");
    svg.appendChild(el("text", { x: L, y: B + 15, "font-size": FONT - 1 }, clock(t0)));
    svg.appendChild(el("text", { x: R, y: B + 15, "font-size": FONT - 1, "text-anchor": "end" }, clock(t1)));
  }
}
function drawModes(compare) {
  const svg = $("modes"); svg.replaceChildren();
  if (!compare || !compare.length) return;
  const W = 600, L = 86, R = 430, top0 = 30, rowH = 46;
  const top = Math.max(...compare.map((c) => Math.max(c.im, c.usable_collateral))) || 1;
  const X = (v) => Math.max(0, v) / top * (R - L);
  // legend
  svg.appendChild(el("rect", { x: L, y: 6, width: 14, height: 12, fill: "#93c5fd" }));
  svg.appendChild(el("text", { x: L + 19, y: 17, "font-size": FONT, class: "legend" }, "usable collateral"));
  svg.appendChild(el("rect", { x: L + 150, y: 6, width: 14, height: 12, fill: "#f87171" }));
  svg.appendChild(el("text", { x: L + 169, y: 17, "font-size": FONT, class: "legend" }, "initial margin (IM)"));
  svg.appendChild(el("text", { x: L + 320, y: 17, "font-size": FONT, class: "legend", fill: "#555" }, "free = collateral − IM"));
  compare.forEach((c, i) => {
    const y = top0 + i * rowH;
    svg.appendChild(el("text", { x: 4, y: y + 18, "font-size": FONT }, c.mode));
    svg.appendChild(el("rect", { x: L, y, width: X(c.usable_collateral), height: 14, fill: "#93c5fd" }));
    svg.appendChild(el("rect", { x: L, y: y + 16, width: X(c.im), height: 14, fill: "#f87171", class: "mode-im" }));
    svg.appendChild(el("text", { x: L + 6 + X(Math.max(c.usable_collateral, c.im)), y: y + 19, "font-size": FONT - 1 },
      `IM ${fmt(c.im, 0)} · free ${fmt(c.free, 0)} USDT`));
  });
  svg.setAttribute("viewBox", `0 0 ${W} ${top0 + compare.length * rowH}`);
}
function showAccount(a) {
  state.account = a;
  $("acct-id").textContent = a.account;
  const note = $("acct-note");
  note.textContent = a.missing || ""; note.classList.toggle("hidden", !a.missing);
  if (a.missing) {
    $("acct-mode").textContent = "";
    for (const id of ["f-equity", "f-im", "f-mm", "f-ratio"]) $(id).textContent = "–";
    for (const id of ["assets", "positions"]) $(id).tBodies[0].replaceChildren();
    drawRatio(); drawModes([]);
    return;
  }
  $("acct-mode").textContent = a.mode + " margin";
  $("f-equity").textContent = fmt(a.equity); $("f-im").textContent = fmt(a.im);
  $("f-mm").textContent = fmt(a.mm); $("f-ratio").textContent = ratioText(a.ratio);
  rows($("assets").tBodies[0], a.assets, (x) => [x.asset, fmt(x.value), fmt(x.haircut), fmt(x.counted)]);
  rows($("positions").tBodies[0], a.positions, (p) => [p.symbol, fmt(p.notional), fmt(p.upnl), fmt(p.cross_mm), fmt(p.impact)]);
  state.ratio.push({ t: a.t, r: a.ratio }); if (state.ratio.length > 600) state.ratio.shift();
  drawRatio(); drawModes(a.compare);
}

// -------------------------------------------------------------- liquidation
// One header row per liquidation (account, ratio before → after, steps, fund / ADL use), its steps under it.
const groupLast = new Map();  // group id → the last row of that group in the table
function groupText(g) {
  const who = `account ${g.account}` + (g.symbol ? ` (isolated ${g.symbol})` : "");
  const after = g.done ? ratioText(g.ratio_after) : (g.ratio_after === null ? "…" : ratioText(g.ratio_after) + " …");
  const took = Object.entries(g.fund_took || {}).map(([s, q]) => `took ${+q.toPrecision(12)} ${s}`);  // summed floats: drop 1.8419999… artefacts
  if (g.fund_paid) took.push(`paid ${fmt(g.fund_paid)} USDT`);
  return `${who} · ratio ${ratioText(g.ratio_before)} → ${after} · ${g.steps} step${g.steps === 1 ? "" : "s"}`
    + ` · insurance fund: ${took.length ? took.join(", ") : "not used"} · ADL: ${g.adl ? g.adl + " counterpart" + (g.adl === 1 ? "y" : "ies") : "not used"}`;
}
function addGroup(g) {
  const tbody = $("cascade-table").tBodies[0];
  let tr = tbody.querySelector(`tr.liq-head[data-group="${g.group}"]`);
  if (!tr) {
    tr = document.createElement("tr"); tr.className = "liq-head"; tr.dataset.group = g.group;
    const td = document.createElement("td"); td.colSpan = 8; tr.appendChild(td);
    tbody.appendChild(tr); groupLast.set(g.group, tr);
  }
  tr.firstChild.textContent = groupText(g);
  tr.classList.toggle("open", !g.done);
}
function addLiquidation(s) {
  const tbody = $("cascade-table").tBodies[0], tr = document.createElement("tr");
  tr.className = "step-" + s.step.split(" ")[0] + (s.group !== null && s.group !== undefined ? " in-group" : "");
  const ratio = s.ratio_after === undefined ? "" : ratioText(s.ratio_after);
  for (const c of [s.n, s.account ?? "", s.step, s.symbol || "", s.qty ?? "", s.price === null ? "" : fmt(s.price), s.impact === null ? "" : fmt(s.impact), ratio]) {
    const td = document.createElement("td"); td.textContent = c; tr.appendChild(td);
  }
  // the shown account's ratio during its liquidation: the explain poll (every 0.5 s) would miss the dip
  const a = state.account;
  if (a && !a.missing && s.account === a.account && s.ratio_after !== undefined && s.t) {
    state.ratio.push({ t: s.t, r: s.ratio_after }); state.ratio.sort((x, y) => x.t - y.t); drawRatio();
  }
  const after = groupLast.get(s.group);
  if (after && after.isConnected) { after.after(tr); groupLast.set(s.group, tr); } else tbody.appendChild(tr);
  while (tbody.rows.length > 600) tbody.deleteRow(0);
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
    // a reconnect replays the whole history: start from an empty table
    $("cascade-table").tBodies[0].replaceChildren(); groupLast.clear(); state.trades = [];
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
  source.addEventListener("liqgroup", (e) => addGroup(JSON.parse(e.data)));
  source.addEventListener("liquidation", (e) => addLiquidation(JSON.parse(e.data)));
  source.addEventListener("fund", (e) => { $("fund").textContent = fmt(JSON.parse(e.data).balance) + " USDT"; });
  source.addEventListener("replay", (e) => {
    const r = JSON.parse(e.data);
    $("rp-slider").max = r.total; $("rp-slider").value = r.position; $("rp-pos").textContent = `${r.position} / ${r.total}`;
  });
  source.addEventListener("reset", () => {
    state.trades = []; state.ratio = []; state.books = {};
    $("cascade-table").tBodies[0].replaceChildren(); groupLast.clear(); showMarket();
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
