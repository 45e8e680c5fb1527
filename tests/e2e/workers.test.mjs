// End-to-end: training photos prepared on several workers (the inference worker's pool of
// helpers), and the fine-tuning stage trained on several (the training worker's helpers), in
// headless Chromium on the CPU.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { serveDist, launch, openApp, waitForModel, shared } from "./support.mjs";

let server;

/** The bench page with Afinar's CPU engine loaded; the requests for `module` are counted (each
 * worker started fetches its wasm). */
async function benchPage(browser, module) {
  const context = await browser.newContext();
  const modules = [];
  context.on("request", (r) => module.test(r.url()) && modules.push(r.url()));
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${server.origin}/bench/index.html`);
  await page.waitForFunction(() => window.bench);
  await page.evaluate(() => window.bench.load("afinar-cpu"));
  return { page, modules, errors };
}

before(async () => {
  server = await serveDist();
});
after(async () => {
  await server?.close();
});

test("photos prepared on two workers have the very rows one worker gives, and the helpers really ran", async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, modules, errors } = await benchPage(browser, /afinar-inference-worker_bg\.wasm/);
    assert.equal(modules.length, 1, "one inference worker before any helper");

    const split = readFileSync(path.join(shared, "data/flower_photos_split.csv"), "utf8").trim().split("\n").slice(1);
    const urls = split.slice(0, 7).map((line) => `/photos/${line.split(",")[0].replace(/^flower_photos\//, "")}`);
    const labels = urls.map(() => 0);
    // The best recipe's rows: boundary activations below the last 2 blocks, augmented views.
    const prepare = (workers) => page.evaluate(async ([u, l, w]) => {
      await window.bench.embed("afinar-cpu", u, l, 2, { views: 2, seed: 42, workers: w });
      return window.bench.preparedDigest("afinar-cpu");
    }, [urls, labels, workers]);
    const one = await prepare(1);
    assert.equal(modules.length, 1, "one worker prepares in the inference worker itself");
    const two = await prepare(2);
    assert.equal(modules.length, 3, "two helpers started, each with the module");
    assert.equal(two, one, "the same rows from two workers as from one");
    // Back to one: the helpers stop, and the rows are still the same.
    assert.equal(await prepare(1), one);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("the fine-tuning stage is trained on two workers, with the results one worker gives", async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, modules, errors } = await benchPage(browser, /afinar-worker_bg\.wasm/);

    // Every 40th photo of the fixed split: 87 photos of the five classes, 69 to train on
    // (enough for the stage to be shared: 64).
    const split = readFileSync(path.join(shared, "data/flower_photos_split.csv"), "utf8").trim().split("\n").slice(1)
      .filter((_, i) => i % 40 === 0).map((line) => line.split(","));
    const classes = [...new Set(split.map(([, c]) => c))].sort();
    const urls = split.map(([p]) => `/photos/${p.replace(/^flower_photos\//, "")}`);
    const labels = split.map(([, c]) => classes.indexOf(c));
    const validation = split.map(([, , part]) => part.trim() !== "train");
    assert.ok(validation.filter((v) => !v).length >= 64);
    const settings = {
      ...(await page.evaluate(async () => (await fetch("recipes.json")).json())).best,
      epochs: 2, finetune_epochs: 3, views: 1,
    };
    const train = (workers) => page.evaluate(async ([u, l, c, s, v, w]) => {
      await window.bench.embed("afinar-cpu", u, l, s.unfreeze, { views: s.views, seed: 42, validation: v, workers: w });
      return window.bench.train("afinar-cpu", { classes: c, settings: s });
    }, [urls, labels, classes, settings, validation, workers]);

    const one = await train(1);
    assert.equal(modules.length, 1, "one training worker");
    const two = await train(2);
    assert.equal(modules.length, 2, "a helper started for the fine-tuning stage");
    assert.equal(two.train_losses.length, 5);
    // The same arithmetic as one worker on each whole batch, to float rounding.
    for (const [epoch, loss] of two.train_losses.entries()) {
      assert.ok(Math.abs(loss - one.train_losses[epoch]) < 1e-3 * Math.max(1, loss),
        `epoch ${epoch + 1}: loss ${loss} on two workers, ${one.train_losses[epoch]} on one`);
    }
    assert.ok(two.train_losses[4] < two.train_losses[0], "training lowers the loss");
    assert.ok(Math.abs(two.val_accuracy - one.val_accuracy) <= 1 / 18 + 1e-9, "the same validation accuracy, to a photo");
    // Each worker's memory is reported: the helper's holds at least the model.
    assert.deepEqual(one.helper_memory, []);
    assert.equal(two.helper_memory.length, 1);
    assert.ok(two.helper_memory[0] > 30e6 && two.helper_memory[0] < two.memory, `helper memory ${two.helper_memory[0]}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("the page offers one worker per core by default, and a number the person picks is kept", async () => {
  const browser = await launch({ webgpu: false });
  try {
    const context = await browser.newContext();
    const { page, seen } = await openApp(context, server.origin);
    await waitForModel(page);
    const cores = await page.evaluate(() => Math.min(Math.max(navigator.hardwareConcurrency || 1, 1), 8));
    const select = page.getByTestId("workers-select");
    assert.equal(await select.inputValue(), "auto");
    assert.match(await select.locator("option[value=auto]").innerText(), new RegExp(`Automatic \\(${cores}\\)`));
    await select.selectOption("1");
    await page.reload();
    await waitForModel(page);
    assert.equal(await page.getByTestId("workers-select").inputValue(), "1");
    assert.deepEqual(seen.errors.filter((e) => !/favicon/.test(e)), []);
  } finally {
    await browser.close();
  }
});
