// Replay one conformance vector (protocol/vectors/*.json, format in its
// README) against a fresh server: the same files the Python runner uses, so
// the format is proven language-neutral.
//
//   node vectors.mjs --orders tcp://127.0.0.1:5555 --market-data tcp://127.0.0.1:5556 \
//        --vector ../../protocol/vectors/strict-input.json
//
// Prints one line `ok <name> <steps>` or fails (exit 1) naming the step.

import { readFileSync } from "node:fs";
import { encode } from "@msgpack/msgpack";
import { Dealer, Subscriber } from "zeromq";
import { decode, splitTopic } from "./client.mjs";

const MAX_SKIPPED = 50; // heartbeats skipped while waiting for one answer
const TIMEOUT_MS = 5000;

function args(argv) {
  const out = {};
  for (let i = 2; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  return out;
}

const hex = (s) => Buffer.from(s, "hex");
const frameOf = (spec) => ("hex" in spec ? hex(spec.hex) : Buffer.from(encode(spec.json)));

function sent(step) {
  if ("send" in step) return [Buffer.from(encode(step.send))];
  if ("send_hex" in step) return [hex(step.send_hex)];
  if ("send_frames" in step) return step.send_frames.map(frameOf);
  return null;
}

// A wire integer may be a BigInt (64-bit) where the vector's JSON has a Number.
const same = (e, g) => (typeof g === "bigint" && typeof e === "number" ? g === BigInt(e) : e === g);

/** The README's matching rules; throws naming the path of the first difference. */
function match(expect, got, where = "$") {
  if (expect === "$any") return;
  if (expect !== null && typeof expect === "object" && !Array.isArray(expect)) {
    const keys = Object.keys(expect);
    if (keys.length === 1 && keys[0] === "$contains") {
      if (typeof got !== "string" || !got.includes(expect.$contains)) {
        throw new Error(`${where}: ${JSON.stringify(got)} lacks ${JSON.stringify(expect.$contains)}`);
      }
      return;
    }
    if (got === null || typeof got !== "object" || Array.isArray(got)) throw new Error(`${where}: expected a map`);
    for (const k of keys) {
      const has = Object.prototype.hasOwnProperty.call(got, k);
      if (expect[k] === "$absent") {
        if (has) throw new Error(`${where}.${k}: should be omitted (default)`);
      } else {
        if (!has) throw new Error(`${where}: no field ${k}`);
        match(expect[k], got[k], `${where}.${k}`);
      }
    }
    return;
  }
  if (Array.isArray(expect)) {
    if (!Array.isArray(got) || got.length !== expect.length) throw new Error(`${where}: list length differs`);
    expect.forEach((e, i) => match(e, got[i], `${where}[${i}]`));
    return;
  }
  // JSON cannot tell 1 from 1.0; the vectors hold integers only (floats are "$any")
  if (!same(expect, got)) throw new Error(`${where}: ${String(got)} != ${JSON.stringify(expect)}`);
}

async function next(iter, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer: ${what}`)), TIMEOUT_MS);
  });
  try {
    const r = await Promise.race([iter.next(), timeout]);
    return r.value;
  } finally {
    clearTimeout(timer);
  }
}

function bodyOf(frames) {
  try {
    return decode(frames[frames.length - 1]);
  } catch {
    return null;
  }
}

async function recv(iter, what) {
  for (let i = 0; i < MAX_SKIPPED; i++) {
    const frames = await next(iter, what);
    const body = bodyOf(frames);
    if (!(body && body.msg === "Heartbeat")) return frames; // a server heartbeat may come at any time
  }
  throw new Error(`only heartbeats: ${what}`);
}

async function recvMd(iter, topic, what) {
  for (let i = 0; i < MAX_SKIPPED; i++) {
    const [frame] = await next(iter, what);
    const [t, body] = splitTopic(frame);
    const msg = decode(body);
    if (t === topic && msg.msg !== "BookHeartbeat") return msg;
  }
  throw new Error(`only heartbeats: ${what}`);
}

async function run(vector, orders, marketData) {
  const socks = new Map();
  let sub = null;
  let subIter = null;
  try {
    if (vector.subscribe) {
      sub = new Subscriber({ linger: 0 });
      sub.connect(marketData);
      for (const t of vector.subscribe) sub.subscribe(t);
      subIter = sub[Symbol.asyncIterator]();
      for (let i = 0; ; i++) { // a BookHeartbeat proves the subscription is live
        if (i >= MAX_SKIPPED) throw new Error("no market-data heartbeat");
        const [frame] = await next(subIter, "a BookHeartbeat");
        if (decode(splitTopic(frame)[1]).msg === "BookHeartbeat") break;
      }
    }
    for (const [n, step] of vector.steps.entries()) {
      const what = `${vector.name} step ${n}: ${step.note || ""}`;
      if (step.md_expect) {
        match(step.md_expect.msg, await recvMd(subIter, step.md_expect.topic, what), `${what} $`);
        continue;
      }
      const name = step.session || "main";
      if (!socks.has(name)) {
        const s = new Dealer({ linger: 0 });
        s.connect(orders);
        socks.set(name, { sock: s, iter: s[Symbol.asyncIterator]() });
      }
      const { sock, iter } = socks.get(name);
      const frames = sent(step);
      if (frames) await sock.send(frames);
      if (step.expect !== undefined) {
        const got = await recv(iter, what);
        if (got.length !== 1) throw new Error(`${what}: ${got.length} frames back`);
        match(step.expect, decode(got[0]), `${what} $`);
      } else if (step.expect_frames) {
        const got = await recv(iter, what);
        if (got.length !== step.expect_frames.length) throw new Error(`${what}: ${got.length} frames back`);
        step.expect_frames.forEach((e, i) => {
          if ("hex" in e) {
            if (got[i].toString("hex") !== e.hex) throw new Error(`${what}: frame ${i} differs`);
          } else {
            match(e.json, decode(got[i]), `${what} frame ${i} $`);
          }
        });
      }
    }
    return vector.steps.length;
  } finally {
    for (const { sock } of socks.values()) sock.close();
    if (sub) sub.close();
  }
}

const a = args(process.argv);
const vector = JSON.parse(readFileSync(a.vector, "utf8"));
run(vector, a.orders, a["market-data"]).then(
  (n) => {
    console.log(`ok ${vector.name} ${n}`);
    process.exit(0);
  },
  (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(1);
  },
);
