// Where a visit's start goes, in every thread: records a Chromium trace (V8's sampling profiler
// on) of a cold visit and a warm one (same profile), then prints each thread's functions with the
// most samples between navigation and the first answer.
//
//   node bench/profile-startup.mjs [--site DIR] [--top K] [--stay MS]
//
// Function names need a build that keeps them (`-g` in the worker's data-wasm-opt-params).
import { readFileSync } from "node:fs";
import path from "node:path";
import { serve, launch, photoDir } from "./serve.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const top = Number(opt("--top", 25));
const stay = Number(opt("--stay", 3000));
const server = await serve({ site: opt("--site", undefined) });
const browser = await launch(false);
const photo = path.join(photoDir, "daisy/100080576_f52e8ee070_n.jpg");

async function visit(context, label) {
  const page = await context.newPage();
  await browser.startTracing(page, {
    categories: ["disabled-by-default-v8.cpu_profiler", "v8.execute", "devtools.timeline", "__metadata", "blink.user_timing"],
  });
  await page.goto(server.origin + "/");
  await page.getByTestId("model-ready").waitFor({ timeout: 300_000 });
  await page.getByTestId("photo-input").setInputFiles([{ name: "daisy.jpg", mimeType: "image/jpeg", buffer: readFileSync(photo) }]);
  await page.locator('[data-testid="result"]:not(.waiting) [data-testid="top-label"]').first().waitFor({ timeout: 300_000 });
  const trace = JSON.parse((await browser.stopTracing()).toString());
  await page.waitForTimeout(stay);
  await page.close();
  report(label, trace.traceEvents ?? trace);
}

function report(label, events) {
  const threads = new Map();
  for (const e of events) if (e.name === "thread_name") threads.set(`${e.pid}:${e.tid}`, e.args.name);
  // The worker's marks (afinar:…) cut its time into stages.
  const marks = events
    .filter((e) => e.cat?.includes("blink.user_timing") && e.name.startsWith("afinar:") && e.ph !== "e")
    .map((e) => ({ name: e.name, ts: e.ts }))
    .sort((a, b) => a.ts - b.ts);
  const stage = (ts) => {
    let name = "start";
    for (const m of marks) if (m.ts <= ts) name = `after ${m.name}`;
    return name;
  };
  // Profile chunks: per (pid, profile id), nodes and samples with time deltas.
  const profiles = new Map();
  for (const e of events) {
    if (e.name === "Profile") {
      profiles.set(`${e.pid}:${e.id}`, { thread: `${e.pid}:${e.tid}`, start: e.args.data.startTime, nodes: new Map(), samples: [], deltas: [] });
    }
    if (e.name !== "ProfileChunk") continue;
    const p = profiles.get(`${e.pid}:${e.id}`);
    if (!p) continue;
    const d = e.args.data;
    for (const n of d.cpuProfile?.nodes ?? []) p.nodes.set(n.id, n);
    p.samples.push(...(d.cpuProfile?.samples ?? []));
    p.deltas.push(...(d.timeDeltas ?? []));
  }
  console.log(`=== ${label}: ${marks.map((m) => `${m.name} ${Math.round((m.ts - marks[0].ts) / 1000)}`).join(", ")}`);
  for (const p of profiles.values()) {
    const stages = new Map();
    let ts = p.start;
    p.samples.forEach((id, i) => {
      ts += p.deltas[i] ?? 0;
      const n = p.nodes.get(id);
      const name = n?.callFrame ? `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url?.split("/").pop() ?? ""}` : "?";
      if (name.startsWith("(idle)")) return;
      const ms = (p.deltas[i + 1] ?? 0) / 1000;
      const s = stage(ts);
      if (!stages.has(s)) stages.set(s, new Map());
      stages.get(s).set(name, (stages.get(s).get(name) ?? 0) + ms);
    });
    for (const [s, self] of stages) {
      const busy = [...self.values()].reduce((a, v) => a + v, 0);
      if (busy < 5) continue;
      console.log(`--- ${threads.get(p.thread) ?? p.thread}, ${s}: ${Math.round(busy)} ms busy`);
      for (const [name, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
        if (ms >= 2) console.log(`${ms.toFixed(1).padStart(8)}  ${name.replace(/::h[0-9a-f]{16}/, "")}`);
      }
    }
  }
}

const context = await browser.newContext();
await visit(context, "cold");
await visit(context, "warm");
await browser.close();
await server.close();
process.exit(0);
