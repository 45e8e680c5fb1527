// A quick look at CPU model time in the page, for kernel work between full `scripts/bench`
// runs: Afinar's worker on the CPU (the default and float32), MediaPipe and LiteRT.js,
// interleaved over the same photos.
//
//   node bench/quick-cpu.mjs [--photos N] [--rounds R]
import { readFileSync } from "node:fs";
import { serve, launch, openBenchPage, photoDir } from "./serve.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const count = Number(opt("--photos", 20));
const rounds = Number(opt("--rounds", 3));
const csv = readFileSync(`${photoDir}_split.csv`, "utf8").trim().split(/\r?\n/).slice(1);
const urls = csv.filter((l) => l.endsWith(",val")).slice(0, count)
  .map((l) => `/photos/${l.split(",")[0].split("/").slice(1).join("/")}`);
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const server = await serve();
const browser = await launch(false);
try {
  const page = await openBenchPage(browser, server.origin);
  const engines = ["afinar-cpu", "afinar-cpu-float", "mediapipe", "litert"];
  for (const e of engines) {
    await page.evaluate((n) => window.bench.load(n), e);
    await page.evaluate(([n, u]) => window.bench.classify(n, u), [e, urls.slice(0, 3)]);
  }
  const ms = Object.fromEntries(engines.map((e) => [e, []]));
  for (let r = 0; r < rounds; r++) {
    for (const e of engines) {
      const results = await page.evaluate(([n, u]) => window.bench.classify(n, u), [e, urls]);
      ms[e].push(median(results.map((x) => x.ms)));
    }
  }
  const line = engines.map((e) => `${e} ${median(ms[e]).toFixed(1)} ms`).join(", ");
  const ratio = (a, b) => (median(ms[a]) / median(ms[b])).toFixed(2);
  console.log(`${line}; afinar/mediapipe ${ratio("afinar-cpu", "mediapipe")}, ` +
    `afinar/litert ${ratio("afinar-cpu", "litert")}, afinar/float ${ratio("afinar-cpu", "afinar-cpu-float")}`);
} finally {
  await browser.close();
  server.close();
  process.exit(0);
}
