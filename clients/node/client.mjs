// A small exchange-sim client in Node.js, written from docs/protocol.md alone
// (the conformance kit's reference client: it must not need the Python code).
//
// Wire rules it follows (each is a section of docs/protocol.md):
// - orders: a DEALER socket, ONE frame per message (no empty delimiter), each
//   frame one msgpack map whose `msg` field names the message;
// - Login first; then Request{id, cmd} -> Reply{id, events}; the server may
//   also send Push{events}, Heartbeat{ts, seq} and a bare Rejected at any time;
// - a Rejected can come bare, inside Reply.events, or per item of
//   BatchReply.results;
// - fields equal to their default are omitted: absent = default;
// - integers encoded in 64 bits (ns timestamps, index prices) decode as
//   BigInt with `useBigInt64: true`; smaller ones as Number (see `int()`);
// - market data: a SUB socket, one frame per message: topic bytes, 0x00, msgpack.

import { Decoder, encode } from "@msgpack/msgpack";
import { Dealer, Subscriber } from "zeromq";

// Decode 64-bit integers as BigInt: a ns timestamp is beyond 2^53 and a
// Number would silently round it.
const decoder = new Decoder({ useBigInt64: true });
export const decode = (buf) => decoder.decode(buf);

/** A protocol integer as a Number when it is exactly one, else a BigInt. */
export function int(v) {
  if (typeof v === "bigint" && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) {
    return Number(v);
  }
  return v;
}

/** Reads fields with their documented defaults (omit_defaults: absent = default). */
export function field(msg, name, dflt) {
  return Object.prototype.hasOwnProperty.call(msg, name) ? msg[name] : dflt;
}

export class ProtocolError extends Error {
  constructor(rejected) {
    super(`${rejected.reason}: ${rejected.message}`);
    this.rejected = rejected;
  }
}

/** One session on the ROUTER socket. */
export class Session {
  constructor(endpoint, { timeoutMs = 5000 } = {}) {
    this.sock = new Dealer({ linger: 0 });
    this.sock.connect(endpoint);
    this.timeoutMs = timeoutMs;
    this.nextId = 1;
    this.pending = new Map(); // request id -> {resolve, reject, timer}
    this.bareWaiters = []; // waiting for a LoginOk / LoggedOut / bare Rejected
    this.pushes = []; // Push events, oldest first
    this.heartbeats = []; // server Heartbeat messages
    this.closed = false;
    this.reader = this.#read();
  }

  async #read() {
    try {
      for await (const frames of this.sock) {
        if (frames.length !== 1) throw new Error(`expected one frame per message, got ${frames.length}`);
        this.#dispatch(decode(frames[0]));
      }
    } catch (err) {
      if (!this.closed) throw err;
    }
  }

  #dispatch(msg) {
    switch (msg.msg) {
      case "Reply":
      case "BatchReply": {
        const id = field(msg, "id", null);
        const p = this.pending.get(id === null ? null : int(id));
        if (p) {
          this.pending.delete(int(id));
          clearTimeout(p.timer);
          p.resolve(msg);
        }
        return;
      }
      case "Push":
        this.pushes.push(...msg.events);
        return;
      case "Heartbeat":
        this.heartbeats.push(msg);
        return;
      default: {
        // LoginOk, LoggedOut, Invariants, Stats, SnapshotTaken, or a bare Rejected
        const w = this.bareWaiters.shift();
        if (w) {
          clearTimeout(w.timer);
          w.resolve(msg);
        }
      }
    }
  }

  #wait(register, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), this.timeoutMs);
      register({ resolve, reject, timer });
    });
  }

  async login(account, apiKey, extra = {}) {
    const answer = this.#wait((w) => this.bareWaiters.push(w), "LoginOk");
    await this.sock.send(encode({ msg: "Login", account, api_key: apiKey, ...extra }));
    const msg = await answer;
    if (msg.msg === "Rejected") throw new ProtocolError(msg);
    if (msg.msg !== "LoginOk") throw new Error(`unexpected ${msg.msg} answering Login`);
    this.account = account;
    return msg;
  }

  /** Send one command; resolves with its Reply ({events, id, duplicate?}). */
  async request(cmd) {
    const id = this.nextId++;
    const answer = this.#wait((w) => this.pending.set(id, w), `the reply to request ${id} (${cmd.msg})`);
    await this.sock.send(encode({ msg: "Request", id, cmd }));
    return answer;
  }

  /** The Reply's events; a Rejected answer throws. */
  async call(cmd) {
    const { events } = await this.request(cmd);
    if (events.length && events[0].msg === "Rejected") throw new ProtocolError(events[0]);
    return events;
  }

  /** Many commands in one frame; resolves with BatchReply.results. */
  async batch(cmds) {
    const id = this.nextId++;
    const answer = this.#wait((w) => this.pending.set(id, w), `the reply to batch ${id}`);
    await this.sock.send(encode({ msg: "Batch", id, cmds }));
    return (await answer).results;
  }

  /** The first Push event matching `pred`, waiting up to the timeout. */
  async waitPush(pred, what) {
    const deadline = Date.now() + this.timeoutMs;
    while (Date.now() < deadline) {
      const i = this.pushes.findIndex(pred);
      if (i >= 0) return this.pushes.splice(i, 1)[0];
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`timed out waiting for a push: ${what}`);
  }

  async close() {
    this.closed = true;
    this.sock.close();
    for (const p of this.pending.values()) clearTimeout(p.timer);
  }
}

/** Split a market-data frame: topic bytes, 0x00, msgpack body. */
export function splitTopic(frame) {
  const nul = frame.indexOf(0);
  if (nul < 0) throw new Error("market-data frame without the 0x00 topic separator");
  return [frame.subarray(0, nul).toString("latin1"), frame.subarray(nul + 1)];
}

/**
 * An L2 book kept in sync from `<SYMBOL>.book` (BookDelta + BookHeartbeat)
 * and QueryBook snapshots, by the sync rules of docs/protocol.md.
 */
export class BookMirror {
  constructor(symbol, session, mdEndpoint) {
    this.symbol = symbol;
    this.session = session;
    this.sub = new Subscriber({ linger: 0 });
    this.sub.connect(mdEndpoint);
    this.sub.subscribe(`${symbol}.book`);
    this.bids = new Map(); // price ticks -> lots
    this.asks = new Map();
    this.seq = null; // null: not synced
    this.buffer = [];
    this.gaps = 0;
    this.snapshots = 0;
    this.heartbeats = 0;
    this.dropNextDelta = false; // test hook: lose one delta as a slow subscriber would
    this.closed = false;
    this.reader = this.#read();
  }

  async #read() {
    try {
      for await (const [frame] of this.sub) {
        const [topic, body] = splitTopic(frame);
        if (topic !== `${this.symbol}.book`) continue;
        const msg = decode(body);
        if (msg.msg === "BookDelta" && this.dropNextDelta) {
          this.dropNextDelta = false;
          continue;
        }
        this.#onMessage(msg);
      }
    } catch (err) {
      if (!this.closed) throw err;
    }
  }

  #onMessage(msg) {
    if (msg.msg === "BookHeartbeat") {
      this.heartbeats++;
      if (this.seq !== null && int(msg.seq) > this.seq) this.#gap(`heartbeat at seq ${msg.seq}, book at ${this.seq}`);
      return;
    }
    if (msg.msg !== "BookDelta") return;
    if (this.seq === null) {
      this.buffer.push(msg); // syncing: kept until the snapshot arrives
      return;
    }
    const seq = int(msg.seq);
    if (seq <= this.seq) return;
    if (seq !== this.seq + 1) {
      this.#gap(`delta seq ${seq} after ${this.seq}`);
      this.buffer.push(msg);
      return;
    }
    this.#apply(msg);
  }

  #apply(delta) {
    for (const [side, levels] of [[this.bids, delta.bids], [this.asks, delta.asks]]) {
      for (const [price, qty] of levels) {
        if (int(qty) === 0) side.delete(int(price));
        else side.set(int(price), int(qty));
      }
    }
    this.seq = int(delta.seq);
  }

  #gap(why) {
    this.gaps++;
    this.lastGap = why;
    this.seq = null; // clear and re-snapshot
    this.bids.clear();
    this.asks.clear();
    this.resync().catch((err) => {
      this.error = err;
    });
  }

  /** QueryBook, then the buffered deltas above the snapshot's seq. */
  async resync() {
    if (this.syncing) return this.syncing;
    this.syncing = (async () => {
      const [snap] = await this.session.call({ msg: "QueryBook", symbol: this.symbol });
      this.snapshots++;
      this.bids = new Map(snap.bids.map(([p, q]) => [int(p), int(q)]));
      this.asks = new Map(snap.asks.map(([p, q]) => [int(p), int(q)]));
      this.seq = int(snap.seq);
      const buffered = this.buffer;
      this.buffer = [];
      for (const d of buffered) this.#onMessage(d);
    })();
    try {
      await this.syncing;
    } finally {
      this.syncing = null;
    }
  }

  bestBid() {
    return this.bids.size ? Math.max(...this.bids.keys()) : null;
  }

  bestAsk() {
    return this.asks.size ? Math.min(...this.asks.keys()) : null;
  }

  /** Wait (bounded) until `pred(this)` holds. */
  async until(pred, what, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.error) throw this.error;
      if (this.seq !== null && pred(this)) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`book mirror: timed out waiting for ${what}`);
  }

  close() {
    this.closed = true;
    this.sub.close();
  }
}
