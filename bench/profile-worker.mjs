// Where the model worker spends its time in the browser: classifies photos with Afinar's worker
// on the bench page while the DevTools CPU profiler samples the worker, then prints the
// functions with the most samples (self and inclusive).
//
//   node bench/profile-worker.mjs [--backend Cpu|WebGpu] [--photos N] [--top K] [--embed]
//
// With --embed, it prepares training photos as the *best* recipe does (boundary activations
// below the last 2 blocks, 4 augmented views) instead of classifying them.
//
// Function names need a worker built with them kept: add `-g` to the worker's
// data-wasm-opt-params in index.html for the profiling build (names cost ~40 % in wasm size).
import { readFileSync } from "node:fs";
import { serve, launch, openBenchPage, photoDir } from "./serve.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const backend = opt("--backend", "Cpu");
const count = Number(opt("--photos", 20));
const top = Number(opt("--top", 30));
const embed = args.includes("--embed");

const csv = readFileSync(`${photoDir}_split.csv`, "utf8").trim().split(/\r?\n/).slice(1);
const urls = csv.filter((l) => l.endsWith(",val")).slice(0, count)
  .map((l) => `/photos/${l.split(",")[0].split("/").slice(1).join("/")}`);

const server = await serve();
const browser = await launch(backend === "WebGpu");
try {
  const page = await openBenchPage(browser, server.origin);
  const engine = backend === "WebGpu" ? "afinar-webgpu" : "afinar-cpu";
  await page.evaluate((n) => window.bench.load(n), engine);
  await page.evaluate(([n, u]) => window.bench.classify(n, u), [engine, urls.slice(0, 2)]);

  // The worker is a target of its own: attach to it (non-flattened, so that one browser-level
  // session can speak to it) and drive its Profiler domain.
  const cdp = await browser.newBrowserCDPSession();
  const { targetInfos } = await cdp.send("Target.getTargets");
  const worker = targetInfos.find((t) => t.type === "worker");
  const { sessionId } = await cdp.send("Target.attachToTarget", { targetId: worker.targetId, flatten: false });
  let nextId = 0;
  const waiting = new Map();
  cdp.on("Target.receivedMessageFromTarget", (e) => {
    const m = JSON.parse(e.message);
    waiting.get(m.id)?.(m.result);
    waiting.delete(m.id);
  });
  const send = (method, params = {}) => new Promise((resolve) => {
    const id = ++nextId;
    waiting.set(id, resolve);
    cdp.send("Target.sendMessageToTarget", { sessionId, message: JSON.stringify({ id, method, params }) });
  });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 100 });
  await send("Profiler.start");
  const started = Date.now();
  const results = embed
    ? await page.evaluate(([n, u]) => window.bench.embed(n, u, u.map(() => 0), 2, { views: 4, seed: 1 }), [engine, urls])
    : await page.evaluate(([n, u]) => window.bench.classify(n, u), [engine, urls]);
  const elapsed = Date.now() - started;
  const { profile } = await send("Profiler.stop");

  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (n) => (n.callFrame.functionName || "(anonymous)").replace(/::h[0-9a-f]{16}$/, "");
  const self = new Map();
  const inclusive = new Map();
  profile.samples.forEach((id, i) => {
    const t = profile.timeDeltas[i + 1] ?? 0;
    const own = name(nodes.get(id));
    self.set(own, (self.get(own) ?? 0) + t);
    const seen = new Set();
    for (let p = id; p !== undefined; p = parent.get(p)) {
      const k = name(nodes.get(p));
      if (!seen.has(k)) inclusive.set(k, (inclusive.get(k) ?? 0) + t);
      seen.add(k);
    }
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const table = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, t]) => `${((100 * t) / total).toFixed(1).padStart(5)} %  ${k}`).join("\n");
  if (embed) {
    const ms = [...results].sort((a, b) => a - b);
    console.log(`${results.length} photos prepared with 4 views and boundary rows on ${backend}: ` +
      `${ms[ms.length >> 1].toFixed(1)} ms each (median), ${elapsed} ms in all`);
  } else {
    const ms = results.map((r) => r.ms).sort((a, b) => a - b);
    const wall = results.map((r) => r.wall_ms).sort((a, b) => a - b);
    console.log(`${results.length} photos on ${backend}: model ${ms[ms.length >> 1].toFixed(1)} ms, ` +
      `round trip ${wall[wall.length >> 1].toFixed(1)} ms (medians)`);
  }
  console.log(`\nself time\n${table(self)}\n\ninclusive time\n${table(inclusive)}`);
} finally {
  await browser.close();
  server.close();
}
