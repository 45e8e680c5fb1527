// The app's start: navigation → model shown ready → first prediction, cold and warm, beside
// LiteRT.js's navigation → first prediction. `scripts/bench` (bench/browser.mjs) records
// `startups`; run alone, it also prints where each start's time goes, the page's and the workers'
// resource timings and performance marks on one clock:
//
//   node bench/startup.mjs [--runs N] [--timeline] [--stay MS]
//
// (--stay: the cold visit stays open MS more before the warm one, as a person's would.)
// (Chromium flags for an experiment: CHROMIUM_FLAGS="--js-flags=--liftoff-only".)
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { serve, launch, median, photoDir } from "./serve.mjs";

// Times in the page's own clock (milliseconds since navigation started), so that the harness's
// own delays (Playwright noticing that the page is ready, handing it a file) are not counted:
// when the model is shown ready, when a photo is given (the file input's change), and when the
// first answer is shown.
const pageClock = () => {
  const times = (window.__afinarTimes = {});
  const once = (name) => {
    times[name] ??= performance.now();
  };
  document.addEventListener("change", () => once("photo"), true);
  new MutationObserver(() => {
    if (document.querySelector('[data-testid="model-ready"]')) once("ready");
    if (document.querySelector('[data-testid="result"]:not(.waiting) [data-testid="top-label"]')) once("result");
  }).observe(document, { subtree: true, childList: true, attributes: true });
};

// For --timeline: marks in the page's timeline when it creates a worker, and when it posts to or
// hears from one (the variant's name).
const workerMarks = () => {
  const Native = window.Worker;
  const variant = (d) => (typeof d === "string" ? d : d && typeof d === "object" ? Object.keys(d)[0] : typeof d);
  window.Worker = function (...args) {
    performance.mark("page: new Worker");
    const worker = new Native(...args);
    worker.addEventListener("message", (e) => performance.mark(`page: got ${variant(e.data)}`));
    const post = worker.postMessage.bind(worker);
    worker.postMessage = (m, t) => {
      performance.mark(`page: post ${variant(m)}`);
      return post(m, t);
    };
    return worker;
  };
  window.Worker.prototype = Native.prototype;
};

// Resource timings and marks of a page or worker, in milliseconds since the epoch.
const timeline = () =>
  [...performance.getEntriesByType("resource"), ...performance.getEntriesByType("mark")].map((e) => ({
    name: e.entryType === "mark" ? e.name : e.name.split("/").pop().split("#")[0],
    start: performance.timeOrigin + e.startTime,
    end: performance.timeOrigin + e.startTime + e.duration,
  }));

/** One visit to the app: navigation, the photo given once the page shows the model ready, the
 * first answer. `first_ms` = ready + photo → answer, in the page's clock; `wall_ms` = the same
 * in the harness's clock, its own delays included. With `rows`, the visit's timeline is pushed
 * there. */
async function visit(context, origin, photo, rows, stay_ms = 0) {
  const page = await context.newPage();
  const workers = [];
  page.on("worker", (w) => workers.push(w));
  const start = Date.now();
  await page.goto(origin + "/");
  await page.getByTestId("model-ready").waitFor({ timeout: 300_000 });
  await page.getByTestId("photo-input").setInputFiles([
    { name: path.basename(photo.path), mimeType: "image/jpeg", buffer: readFileSync(photo.path) },
  ]);
  await page.locator('[data-testid="result"]:not(.waiting) [data-testid="top-label"]').first().waitFor({ timeout: 300_000 });
  const wall_ms = Date.now() - start;
  const t = await page.evaluate(() => window.__afinarTimes);
  const backend = await page.getByTestId("backend").innerText();
  if (rows) {
    console.log(`timing: ${await page.getByTestId("timing").first().innerText()}`);
    const origin0 = await page.evaluate(() => performance.timeOrigin);
    const add = (where, entries) => rows.push(...entries.map((e) => ({ ...e, where, start: e.start - origin0, end: e.end - origin0 })));
    add("page", await page.evaluate(timeline));
    for (const w of workers) add(w.url().split("/").pop().split("#")[0], await w.evaluate(timeline).catch(() => []));
  }
  await page.waitForTimeout(stay_ms);
  await page.close();
  const ready_ms = Math.round(t.ready);
  const photo_ms = Math.round(t.result - t.photo);
  return { first_ms: ready_ms + photo_ms, ready_ms, photo_ms, wall_ms, backend };
}

/** LiteRT.js in a fresh profile: navigation to the bench page, its runtime and model loaded,
 * its first prediction of the same photo (`first_ms` in the page's clock). */
async function liteRtFirst(browser, origin, photo) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const start = Date.now();
  await page.goto(origin + "/bench/");
  await page.waitForFunction(() => window.benchReady === true);
  await page.evaluate(() => window.bench.load("litert"));
  const first = await page.evaluate(async (url) => {
    await window.bench.classify("litert", [url]);
    return performance.now();
  }, photo.url);
  const wall_ms = Date.now() - start;
  await context.close();
  return { first_ms: Math.round(first), wall_ms };
}

/** The app's cold start (a fresh profile) and warm start (the same profile again), and
 * LiteRT.js's cold start, interleaved `runs` times: medians, and every run. `photo`: `{ path,
 * url }` of a JPEG, as a file and as served by bench/serve.mjs. `timeline(label, rows)` receives
 * each visit's timeline where given. */
export async function startups(browser, origin, photo, runs, timeline, stay_ms = 0) {
  const all = { app: [], litert: [] };
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext();
    await context.addInitScript(pageClock);
    if (timeline) await context.addInitScript(workerMarks);
    const rows = timeline ? [[], []] : [];
    const cold = await visit(context, origin, photo, rows[0], stay_ms);
    const warm = await visit(context, origin, photo, rows[1]);
    await context.close();
    if (timeline) {
      timeline(`cold ${cold.first_ms} ms`, rows[0]);
      timeline(`warm ${warm.first_ms} ms`, rows[1]);
    }
    all.app.push({ cold, warm });
    all.litert.push(await liteRtFirst(browser, origin, photo));
    const lite = all.litert.at(-1);
    console.error(
      `app: cold ${cold.first_ms} ms (ready ${cold.ready_ms} + photo ${cold.photo_ms}; harness ${cold.wall_ms}), ` +
        `warm ${warm.first_ms} ms (ready ${warm.ready_ms} + photo ${warm.photo_ms}; harness ${warm.wall_ms}); ` +
        `LiteRT.js ${lite.first_ms} ms (harness ${lite.wall_ms})`,
    );
  }
  const med = (xs, key) => median(xs.map((x) => x[key]));
  const colds = all.app.map((r) => r.cold);
  const warms = all.app.map((r) => r.warm);
  return {
    app: {
      cold_ms: med(colds, "first_ms"),
      warm_ms: med(warms, "first_ms"),
      cold_wall_ms: med(colds, "wall_ms"),
      warm_wall_ms: med(warms, "wall_ms"),
      backend: all.app[0].warm.backend,
      runs: all.app,
    },
    litert: { cold_ms: med(all.litert, "first_ms"), wall_ms: med(all.litert, "wall_ms"), runs: all.litert },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const runs = Number(args[args.indexOf("--runs") + 1]) || 3;
  const stay = args.includes("--stay") ? Number(args[args.indexOf("--stay") + 1]) : 0;
  const print = (label, rows) => {
    console.log(`--- ${label}`);
    for (const r of rows.sort((a, b) => a.start - b.start)) {
      const ms = (v) => String(Math.round(v)).padStart(6);
      console.log(`${ms(r.start)} ${ms(r.end)}  ${r.where.padEnd(34)} ${r.name}`);
    }
  };
  const server = await serve();
  const browser = await launch(false, process.env.CHROMIUM_FLAGS?.split(" ") ?? []);
  const daisy = "daisy/100080576_f52e8ee070_n.jpg";
  const photo = { path: path.join(photoDir, daisy), url: `/photos/${daisy}` };
  const result = await startups(browser, server.origin, photo, runs, args.includes("--timeline") ? print : undefined, stay);
  const { app, litert } = result;
  console.log(
    `median of ${runs}: app cold ${app.cold_ms} ms, warm ${app.warm_ms} ms; LiteRT.js ${litert.cold_ms} ms; ` +
      `cold / LiteRT.js ${(app.cold_ms / litert.cold_ms).toFixed(2)}`,
  );
  await browser.close();
  await server.close();
  process.exit(0);
}
