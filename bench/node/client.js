// The load client of the fan-out benchmark (bench/fanout.py runs it; see its docstring):
// N socket.io-client connections (WebSocket transport) to each server under test, from this one
// Node process, then rounds interleaved between the servers (app, node, app, node, ...).
//
//   node bench/node/client.js CONFIG.json      -> one JSON line of results on stdout
//
// CONFIG: {n, rounds, warmup, pause_ms, timeout_ms, connect_concurrency, template,
//          app: {url, pid, tokens: [...], customer_token, need_body} | null,
//          node: {url, pid} | null}
// A round on the app POSTs a matching need (Bearer customer_token); on the Node server it POSTs
// /emit. t0 is taken just before the request; each socket stamps the arrival of its
// `notification` whose data.need.id is the round's need; the round is over when all N have
// it (or timeout_ms passed: the rest are missed). The Node server's template is the first
// event the app sent, so both send the same payload shape and size.
// Server memory: RSS of each server process read from /proc before and after its N sockets
// connected. Progress goes to stderr.

"use strict";

const fs = require("node:fs");
const os = require("node:os");
const { performance } = require("node:perf_hooks");
const { io } = require("socket.io-client");

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const CLK_TCK = 100; // Linux USER_HZ
const log = (msg) => process.stderr.write(`    [client] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m[1]);
}

function cpuMs(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

class Target {
  constructor(name, url, pid) {
    this.name = name;
    this.url = url;
    this.pid = pid;
    this.sockets = [];
    this.failures = 0;
    this.arrivals = new Map(); // need id -> Map(socket index -> ms)
    this.waiter = null; // {needId, resolve}
    this.duplicates = 0;
    this.disconnects = 0;
    this.sample = null; // the first event seen, as received
    this.measuring = false;
  }

  onEvent(idx, event) {
    const t = performance.now();
    if (!event || event.type !== "need.matched") return;
    if (this.sample === null) this.sample = event;
    const needId = event.data.need.id;
    let got = this.arrivals.get(needId);
    if (!got) this.arrivals.set(needId, (got = new Map()));
    if (got.has(idx)) {
      this.duplicates += 1;
      return;
    }
    got.set(idx, t);
    const w = this.waiter;
    if (w && w.needId === needId && got.size >= this.sockets.length) w.resolve();
  }

  async connect(tokens, concurrency) {
    let next = 0;
    const one = async () => {
      while (next < tokens.length) {
        const idx = next++;
        for (let attempt = 0; attempt < 3; attempt++) {
          const ok = await new Promise((resolve) => {
            const socket = io(this.url, {
              transports: config.transports || ["websocket"], forceNew: true, reconnection: false,
              auth: tokens[idx] === null ? undefined : { token: tokens[idx] }, timeout: 30000,
            });
            socket.on("notification", (ev) => this.onEvent(idx, ev));
            socket.once("connect", async () => {
              if (socket.io.engine.transport.name !== socket.io.opts.transports.at(-1)) {
                // polling first: count it connected once it is upgraded, as a browser ends up
                await new Promise((r) => socket.io.engine.once("upgrade", r));
              }
              socket.on("disconnect", (reason) => {
                if (this.measuring) {
                  this.disconnects += 1;
                  log(`${this.name} socket ${idx} disconnected: ${reason}`);
                }
              });
              this.sockets.push(socket);
              resolve(true);
            });
            socket.once("connect_error", (err) => {
              socket.close();
              if (attempt === 2) log(`${this.name} socket ${idx} failed: ${err.message}`);
              resolve(false);
            });
          });
          if (ok) break;
          if (attempt === 2) this.failures += 1;
          await sleep(500 * (attempt + 1));
        }
        if (tokens.length >= 2000 && this.sockets.length % 2000 === 0) {
          log(`${this.name}: ${this.sockets.length} connected`);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, one));
  }

  wait(needId, timeoutMs) {
    return new Promise((resolve) => {
      const got = this.arrivals.get(needId);
      if (got && got.size >= this.sockets.length) return resolve();
      const timer = setTimeout(() => { this.waiter = null; resolve(); }, timeoutMs);
      this.waiter = { needId, resolve: () => { clearTimeout(timer); this.waiter = null; resolve(); } };
    });
  }

  async round(trigger) {
    const cpu0 = cpuMs(this.pid);
    const t0 = performance.now();
    const needId = await trigger();
    const tResp = performance.now();
    await this.wait(needId, config.timeout_ms);
    const tEnd = performance.now();
    const cpu1 = cpuMs(this.pid);
    const got = this.arrivals.get(needId) || new Map();
    this.arrivals.delete(needId);
    const lat = [...got.values()].map((t) => t - t0);
    const missed = this.sockets.length - got.size;
    return {
      post_ms: tResp - t0,
      first_ms: lat.length ? Math.min(...lat) : null,
      last_ms: lat.length && missed === 0 ? Math.max(...lat) : null,
      deliveries_ms: lat,
      missed,
      server_cpu_ms: cpu1 - cpu0,
      wall_ms: tEnd - t0,
      loadavg: os.loadavg()[0],
    };
  }
}

async function postJson(url, body, headers = {}) {
  const resp = await fetch(url, {
    method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", ...headers },
  });
  const payload = await resp.json();
  if (resp.status >= 300) throw new Error(`POST ${url} -> ${resp.status}: ${JSON.stringify(payload)}`);
  return payload;
}

async function main() {
  const targets = [];
  let app = null;
  let node = null;
  const out = { servers: {} };
  if (config.app) {
    app = new Target("app", config.app.url, config.app.pid);
    const c = config.app;
    app.trigger = async () => (await postJson(`${c.url}/api/v1/needs`, c.need_body,
      { Authorization: `Bearer ${c.customer_token}` })).id;
    targets.push([app, c.tokens]);
  }
  if (config.node) {
    node = new Target("node", config.node.url, config.node.pid);
    let k = 0;
    node.trigger = async () => {
      k += 1;
      const needId = 1_000_000_000 + k;
      const template = (app && app.sample) || config.template;
      await postJson(`${config.node.url}/emit`, { template, need_id: needId });
      return needId;
    };
    targets.push([node, Array(config.n).fill(null)]);
  }
  for (const [t, tokens] of targets) {
    const rss0 = rssKb(t.pid);
    const start = performance.now();
    await t.connect(tokens, config.connect_concurrency);
    const connectS = (performance.now() - start) / 1000;
    await sleep(2000); // let the server finish the handshakes' leftovers
    const rss1 = rssKb(t.pid);
    out.servers[t.name] = { connected: t.sockets.length, failures: t.failures,
      connect_s: connectS, rss_before_kb: rss0, rss_after_kb: rss1, rounds: [] };
    log(`${t.name}: ${t.sockets.length} connected in ${connectS.toFixed(1)} s, RSS ` +
        `${(rss0 / 1024).toFixed(1)} -> ${(rss1 / 1024).toFixed(1)} MiB`);
  }
  // warm-up (the app first: its first event is the Node server's template)
  for (let i = 0; i < config.warmup; i++) {
    for (const [t] of targets) { await t.round(t.trigger); await sleep(config.pause_ms); }
  }
  out.template_bytes = Buffer.byteLength(JSON.stringify((app && app.sample) || config.template));
  out.loadavg_before = os.loadavg();
  for (const [t] of targets) t.measuring = true;
  let profiler = null; // --profile: py-spy records the app server during the measured rounds
  if (config.profile && app) {
    profiler = require("node:child_process").spawn(config.profile[0], config.profile.slice(1),
      { stdio: ["ignore", "ignore", "inherit"] });
    await sleep(1000); // py-spy attaches
  }
  for (let i = 0; i < config.rounds; i++) {
    for (const [t] of targets) {
      out.servers[t.name].rounds.push(await t.round(t.trigger));
      await sleep(config.pause_ms);
    }
  }
  out.loadavg_after = os.loadavg();
  if (profiler) {
    const exited = new Promise((r) => profiler.once("exit", r));
    profiler.kill("SIGINT");
    await exited;
  }
  for (const [t] of targets) {
    t.measuring = false;
    Object.assign(out.servers[t.name], { duplicates: t.duplicates, disconnects: t.disconnects });
    for (const s of t.sockets) s.close();
  }
  out.client_cpu_ms = (process.cpuUsage().user + process.cpuUsage().system) / 1000;
  fs.writeSync(1, JSON.stringify(out) + "\n"); // synchronous: process.exit would cut a pipe short
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
