// Browser half of `scripts/bench`: drives the bench page (dist/bench/, built by Trunk next to the
// app) and the app itself in headless Chromium, and prints one JSON object.
//
//   node bench/browser.mjs --photos photos.json --out browser.json [--quick] [--features DIR]
//
// photos.json: {"inference": [relative paths], "train": [[relative path, class index]...],
// "classes": [...], "scaling": [N...]}, paths relative to the flower_photos folder.
import { writeFile } from "node:fs/promises";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { serve, launch, median, openBenchPage, root, photoDir } from "./serve.mjs";
import { startups } from "./startup.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const quick = args.includes("--quick");
const plan = JSON.parse(readFileSync(opt("--photos"), "utf8"));
const featuresDir = opt("--features");
const rounds = Number(opt("--rounds", quick ? 1 : 3));
const warmup = quick ? 2 : 5;
// WebGPU without a GPU is SwiftShader, seconds per photo: a few photos say enough.
const webgpuPhotos = quick ? 1 : 5;

/** The photo the start-up measurements classify: the first of the inference photos. */
const photoFile = () => ({ path: path.join(photoDir, plan.inference[0]), url: `/photos/${plan.inference[0]}` });

const stats = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length });

// A step that never answers (a worker that dropped a message, a hung adapter) must fail the run,
// not hold CI until its own limit.
const limitMinutes = quick ? 20 : 120;
setTimeout(() => {
  console.error(`browser bench: not finished after ${limitMinutes} min; stopping`);
  process.exit(1);
}, limitMinutes * 60_000).unref();

async function main() {
  const server = await serve({ features: featuresDir });
  const out = { quick, rounds, chromium: null, inference: {}, load: {}, app_load: {}, sizes: {} };
  const errors = [];
  try {
    // The inference worker (every visit) and the training worker (Burn: training and WebGPU).
    for (const [key, wasm] of [["inference_worker_wasm", "afinar-inference-worker_bg.wasm"], ["worker_wasm", "afinar-worker_bg.wasm"]]) {
      const bytes = readFileSync(path.join(root, "dist", wasm));
      out.sizes[key] = { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
    }
    const page_wasm = readdirSync(path.join(root, "dist"))
      .find((f) => f.startsWith("afinar-web") && f.endsWith(".wasm"));
    const pageBytes = readFileSync(path.join(root, "dist", page_wasm));
    out.sizes.page_wasm = { raw: pageBytes.length, gzip: gzipSync(pageBytes, { level: 9 }).length };

    const browser = await launch(true);
    out.chromium = browser.version();
    const page = await openBenchPage(browser, server.origin, errors);
    const webgpu = await page.evaluate(() => window.bench.hasWebGpu());

    // Inference: each engine loaded once, warmed up, then rounds of the same photos with the
    // engines' order rotated, so drift in the machine falls on all of them alike.
    // afinar-cpu-float: the same worker in float32 (the default runs the file's integers).
    const names = ["afinar-cpu", "afinar-cpu-float", "mediapipe", "litert"].concat(webgpu ? ["afinar-webgpu"] : []);
    const urls = plan.inference.map((p) => `/photos/${p}`);
    for (const name of names) {
      try {
        out.load[name] = await page.evaluate((n) => window.bench.load(n), name);
        const some = name === "afinar-webgpu" ? urls.slice(0, 1) : urls.slice(0, warmup);
        await page.evaluate(([n, u]) => window.bench.classify(n, u), [name, some]);
        out.inference[name] = { samples: [], round_medians: [], top1: [] };
      } catch (e) {
        out.load[name] = { error: String(e) };
        console.error(`${name}: ${e}`);
      }
    }
    const running = names.filter((n) => out.inference[n]);
    for (let r = 0; r < rounds; r++) {
      const order = running.map((_, i) => running[(i + r) % running.length]);
      for (const name of order) {
        const photos = name === "afinar-webgpu" ? urls.slice(0, webgpuPhotos) : urls;
        const results = await page.evaluate(([n, u]) => window.bench.classify(n, u), [name, photos]);
        const rec = out.inference[name];
        rec.samples.push(...results.map((x) => x.ms));
        rec.round_medians.push(median(results.map((x) => x.ms)));
        if (results[0].wall_ms !== undefined) {
          rec.wall_samples = (rec.wall_samples ?? []).concat(results.map((x) => x.wall_ms));
          rec.memory = results.at(-1).memory;
        }
        if (r === 0) rec.top1 = results.map((x) => x.top);
        console.error(`round ${r + 1} ${name}: ${median(results.map((x) => x.ms)).toFixed(1)} ms/photo`);
      }
    }
    for (const rec of Object.values(out.inference)) {
      rec.ms_per_photo = stats(rec.samples);
      if (rec.wall_samples) rec.wall_ms_per_photo = stats(rec.wall_samples);
    }
    // Afinar's ratio to each anchor, round by round (each round ran them back to back).
    out.ratios = {};
    for (const [ours, anchor] of [["afinar-cpu", "mediapipe"], ["afinar-cpu", "litert"],
      ["afinar-cpu-float", "mediapipe"], ["afinar-cpu-float", "litert"], ["afinar-cpu", "afinar-cpu-float"]]) {
      const a = out.inference[ours], b = out.inference[anchor];
      if (a && b) {
        const per = a.round_medians.map((m, i) => m / b.round_medians[i]);
        out.ratios[`${ours}/${anchor}`] = stats(per);
      }
    }
    // The same model should say the same thing: top-1 agreement with Afinar on the CPU.
    out.top1_agreement = {};
    const ref = out.inference["afinar-cpu"]?.top1 ?? [];
    for (const [name, rec] of Object.entries(out.inference)) {
      const n = Math.min(ref.length, rec.top1.length);
      out.top1_agreement[name] = n ? rec.top1.slice(0, n).filter((t, i) => t === ref[i]).length / n : null;
    }
    for (const name of ["afinar-cpu-float", "mediapipe", "litert"]) await page.evaluate((n) => window.bench.close(n), name);

    // Training in the browser: prepare photos (features), then the default recipe on them.
    out.training = {};
    const trainUrls = plan.train.map(([p]) => `/photos/${p}`);
    const trainLabels = plan.train.map(([, c]) => c);
    const settings = { epochs: 10, learning_rate: 1e-3, batch_size: 32, seed: 42, val_fraction: 0.2,
      unfreeze: null, finetune_epochs: 5, finetune_learning_rate: 1e-4 };
    const backends = ["afinar-cpu"].concat(out.inference["afinar-webgpu"] ? ["afinar-webgpu"] : []);
    for (const name of backends) {
      // WebGPU on a software adapter (seconds per photo): a handful of photos, prepared once
      // with their boundary activations for both stages.
      const gpu = name === "afinar-webgpu";
      const n = gpu ? (quick ? 10 : 20) : trainUrls.length;
      const embedMs = await page.evaluate(([e, u, l, k]) => window.bench.embed(e, u, l, k),
        [name, trainUrls.slice(0, n), trainLabels.slice(0, n), gpu ? 2 : null]);
      const head = await page.evaluate(([e, c, s]) => window.bench.train(e, { classes: c, settings: s }),
        [name, plan.classes, settings]);
      const model = readFileSync(path.join(root, "dist/models/mobilenet_v2_1.0_224_quant.tflite")).length;
      // The classifier published as a web app: with the head alone here, fine-tuned below.
      if (!gpu) out.sizes.published = { head_alone: { ...(await page.evaluate((e) => window.bench.publish(e), name)), model, head: head.head_bytes } };
      const ft = gpu ? n : plan.finetune_photos;
      const ftMs = gpu ? embedMs : await page.evaluate(([e, u, l]) => window.bench.embed(e, u, l, 2),
        [name, trainUrls.slice(0, ft), trainLabels.slice(0, ft)]);
      // On SwiftShader one fine-tuning epoch already takes tens of seconds.
      const ftSettings = { ...settings, unfreeze: 2, finetune_epochs: quick || gpu ? 1 : 5 };
      const tuned = await page.evaluate(([e, c, s]) => window.bench.train(e, { classes: c, settings: s }),
        [name, plan.classes, ftSettings]);
      out.training[name] = {
        photos: n, embed_ms_per_photo: stats(embedMs), photos_per_s: 1000 / median(embedMs), head,
        finetune: { photos: ft, epochs: ftSettings.finetune_epochs, embed_ms_per_photo: stats(ftMs), ...tuned },
      };
      console.error(`${name} training: ${(1000 / median(embedMs)).toFixed(1)} photos/s, head ${head.train_ms.toFixed(0)} ms, ` +
        `val ${head.val_accuracy}; fine-tune on ${ft}: ${tuned.train_ms.toFixed(0)} ms`);
      if (!gpu) {
        out.sizes.published.finetuned = { ...(await page.evaluate((e) => window.bench.publish(e), name)), model, head: tuned.head_bytes };
        console.error(`published: single file ${JSON.stringify(out.sizes.published)}`);
      }
    }

    // Preparing photos on 1 and on 2 workers (the page's pool of inference workers), rounds
    // interleaved: the best recipe's rows (boundary activations and 4 augmented views).
    const poolUrls = trainUrls.slice(0, quick ? 6 : 60);
    const bestRows = { unfreeze: 2, views: 4, seed: 42 };
    out.prepare_workers = { photos: poolUrls.length, rows: bestRows, seconds: { 1: [], 2: [] } };
    await page.evaluate((e) => window.bench.load(e), "afinar-cpu");
    for (let round = 0; round < (quick ? 1 : 2); round++) {
      for (const workers of [1, 2]) {
        const s = await page.evaluate(([e, u, r, w]) => window.bench.prepareTime(e, u, r, w),
          ["afinar-cpu", poolUrls, bestRows, workers]);
        out.prepare_workers.seconds[workers].push(s);
        console.error(`prepare ${poolUrls.length} photos (best's rows) on ${workers} worker(s): ${s.toFixed(1)} s`);
      }
    }
    out.prepare_workers.speedup = median(out.prepare_workers.seconds[1]) / median(out.prepare_workers.seconds[2]);

    // Scaling: the head trained in the browser on the native run's features of N photos, each
    // in a fresh worker, so that its memory (which never shrinks) is this size's own.
    out.scaling = [];
    for (const n of featuresDir ? plan.scaling : []) {
      await page.evaluate((e) => window.bench.load(e), "afinar-cpu");
      const r = await page.evaluate(([n, c, s]) => window.bench.train("afinar-cpu",
        { classes: c, settings: s, featuresUrl: `/features/features-${n}.f32`, labelsUrl: `/features/labels-${n}.u8` }),
        [n, plan.classes, settings]);
      out.scaling.push({ photos: n, ...r });
      console.error(`browser head on ${n} photos: ${r.train_ms.toFixed(0)} ms, wasm memory ${(r.memory / 1e6).toFixed(0)} MB`);
    }
    await page.close();

    // The app itself: cold load (empty cache) and warm load to the first prediction, in a
    // browser without WebGPU and in one with an adapter (the app chooses its backend there).
    const plain = await launch(false);
    const started = await startups(plain, server.origin, photoFile(), quick ? 1 : 3);
    out.app_load.cpu = started.app;
    out.litert_first = started.litert;
    await plain.close();
    if (webgpu) out.app_load.webgpu = (await startups(browser, server.origin, photoFile(), 1)).app;
    await browser.close();
  } finally {
    server.close();
  }
  out.errors = errors;
  await writeFile(opt("--out"), JSON.stringify(out, null, 1));
  // A browser's own chromium processes may linger: exit now.
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
