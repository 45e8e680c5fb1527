// A recipe of the ladder in the page's worker on the CPU (one thread, no WebGPU), on the same
// fixed split as `scripts/bench-recipes` runs natively: every photo prepared as the page
// prepares it (training photos with the recipe's augmented views, boundary activations when it
// fine-tunes), then trained. Appends one JSON line per run.
//
//   node bench/browser-recipe.mjs [--recipe best] [--seed 42] [--workers 1] [--out bench/recipes-page.jsonl]
//
// `--workers N` prepares the photos on N workers (the page's pool) and shares the fine-tuning
// stage among N training workers (the head's stage runs on one).
//
// Needs the app built into dist/ (Trunk copies the bench page, www/bench/, to dist/bench/).
import { appendFile, readFile } from "node:fs/promises";
import path from "node:path";
import { serve, launch, openBenchPage, shared } from "./serve.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const recipe = opt("--recipe", "best");
const seed = Number(opt("--seed", 42));
const workers = Number(opt("--workers", 1));
const out = opt("--out", "bench/recipes-page.jsonl");

const csv = await readFile(path.join(shared, "data/flower_photos_split.csv"), "utf8");
const rows = csv.trim().split("\n").slice(1).map((line) => line.split(","));
const classes = [...new Set(rows.map(([, c]) => c))].sort();
// Paths in the split file are relative to flower_photos' parent; the server serves flower_photos.
const urls = rows.map(([p]) => `/photos/${p.replace(/^flower_photos\//, "")}`);
const labels = rows.map(([, c]) => classes.indexOf(c));
const validation = rows.map(([, , split]) => split.trim() !== "train");

const server = await serve();
const browser = await launch(false);
const errors = [];
try {
  const page = await openBenchPage(browser, server.origin, errors);
  page.on("console", (m) => m.type() === "log" && console.error(m.text()));
  const settings = { ...(await page.evaluate(async () => (await fetch("recipes.json")).json()))[recipe], seed };
  await page.evaluate((e) => window.bench.load(e), "afinar-cpu");
  console.error(`${recipe}, seed ${seed}: ${urls.length} photos, ${validation.filter(Boolean).length} held out`);
  const start = Date.now();
  await page.evaluate(([u, l, k, o]) => window.bench.embed("afinar-cpu", u, l, k, o),
    [urls, labels, settings.unfreeze, { views: settings.views, seed, validation, workers }]);
  const prepared = Date.now();
  const trained = await page.evaluate(([c, s]) => window.bench.train("afinar-cpu", { classes: c, settings: s }),
    [classes, settings]);
  const end = Date.now();
  const line = {
    recipe, seed, where: `page, CPU: prepared and fine-tuned on ${workers} worker${workers > 1 ? "s" : ""}`, cores: workers,
    seconds: (end - start) / 1000, prepare_seconds: (prepared - start) / 1000,
    train_seconds: trained.train_ms / 1000, val_accuracy: trained.val_accuracy,
    macro_f1: trained.macro_f1, kept_epoch: trained.kept_epoch,
    epochs_run: trained.epoch_elapsed_ms.length, wasm_memory_mb: Math.round(trained.memory / 1e6),
    helper_memory_mb: trained.helper_memory.map((b) => Math.round(b / 1e6)),
    epoch_seconds: trained.epoch_elapsed_ms.map((ms, i, all) => Math.round(ms - (all[i - 1] ?? 0)) / 1000),
    errors,
  };
  console.error(JSON.stringify(line));
  await appendFile(out, JSON.stringify(line) + "\n");
} finally {
  await browser.close();
  server.close();
}
process.exit(0);
