// End-to-end: a trained classifier published as a web app of its own, in both forms. The folder
// is served from a static server of its own (then used offline), the single file is opened from
// file://; both give the held-back photos the same classes and probabilities as the main page,
// ask nothing of any other origin, and are the same bytes as `afinar publish` writes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import os from "node:os";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, copyFileSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { serve } from "../../bench/serve.mjs";
import { serveDist, launch, openApp, waitForModel, waitForResults, waitUntilPrepared, shared, root, dist } from "./support.mjs";

// The page's five default classes: each needs photos.
const CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"];
const PER_CLASS = 6;
const HELD_BACK = 1;
const MODEL = path.join(dist, "models/mobilenet_v2_1.0_224_quant.tflite");
const OTHER_MODEL = path.join(shared, "models/tf2_mobilenet_v2_1.0_224_ptq.tflite");
const CLI = path.join(root, "target/release/afinar");

let server;
let work;
const heldBack = [];
before(async () => {
  server = await serveDist();
  work = mkdtempSync(path.join(os.tmpdir(), "afinar-publish-"));
  for (const name of CLASSES) {
    const from = path.join(shared, "data/flower_photos", name);
    const photos = readdirSync(from).filter((f) => f.endsWith(".jpg")).sort();
    mkdirSync(path.join(work, "flowers", name), { recursive: true });
    for (const f of photos.slice(0, PER_CLASS)) copyFileSync(path.join(from, f), path.join(work, "flowers", name, f));
    heldBack.push(...photos.slice(PER_CLASS, PER_CLASS + HELD_BACK).map((f) => path.join(from, f)));
  }
});
after(async () => {
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** What a page's cards say of the user's classes, by photo name: the top class and its
 * probability (the main page's and the published app's cards carry the same test ids). */
async function customAnswers(page) {
  return page.evaluate(() => {
    const answers = {};
    for (const card of document.querySelectorAll('[data-testid="result"]')) {
      const top = card.querySelector('[data-testid="custom-top"]');
      const error = card.querySelector('[data-testid="error"]');
      answers[card.getAttribute("data-name")] = top
        ? { class: top.getAttribute("data-class"), prob: Number(top.getAttribute("data-prob")), shown: card.querySelector('[data-testid="custom-label"]').textContent }
        : { error: error?.textContent ?? "no answer" };
    }
    return answers;
  });
}

/** Waits until the published app has answered `count` photos. */
async function waitForAnswers(page, count) {
  await page.waitForFunction(
    (n) => document.querySelectorAll('[data-testid="result"] [data-testid="custom-top"], [data-testid="result"] [data-testid="error"]').length === n,
    count,
    { timeout: 120_000 },
  );
}

async function save(page, testId, name) {
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId(testId).click()]);
  const file = path.join(work, name);
  await download.saveAs(file);
  return file;
}

function assertSameAnswers(got, expected, where) {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(expected).sort(), where);
  for (const [name, answer] of Object.entries(expected)) {
    assert.equal(got[name].class, answer.class, `${where}: ${name}`);
    assert.equal(got[name].shown, answer.shown, `${where}: ${name}`);
    assert.ok(Math.abs(got[name].prob - answer.prob) <= 1e-5, `${where}: ${name}: ${got[name].prob} vs ${answer.prob}`);
  }
}

/** Opens a published app at `url`, classifies the held-back photos and returns its answers;
 * every request it made and every console error are in `seen`. */
async function classifyIn(context, url, seen) {
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && seen.errors.push(m.text()));
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  await page.goto(url);
  await page.getByTestId("model-status").filter({ hasText: "Ready" }).waitFor({ timeout: 120_000 });
  await page.getByTestId("photo-input").setInputFiles(heldBack);
  await waitForAnswers(page, heldBack.length);
  return { page, answers: await customAnswers(page) };
}

test("a trained classifier is published as a folder and as one file, which answer as the page does, offline and from the disk", async () => {
  const browser = await launch({ webgpu: false });
  try {
    const context = await browser.newContext({ acceptDownloads: true });
    const { page } = await openApp(context, server.origin);
    await waitForModel(page);
    await page.getByTestId("dataset-folder-input").setInputFiles(path.join(work, "flowers"));
    await waitUntilPrepared(page);
    await page.getByTestId("train-button").click();
    const stopped = page.getByTestId("train-status").filter({ hasText: /stopped|failed/i });
    await page.getByTestId("training-done").or(stopped).first().waitFor({ timeout: 600_000 });
    assert.equal(await stopped.count(), 0, await page.getByTestId("train-status").allInnerTexts().then(String));
    const accuracy = await page.getByTestId("val-accuracy").innerText();

    await page.getByTestId("photo-input").setInputFiles(heldBack);
    await waitForResults(page, heldBack.length);
    const expected = await customAnswers(page);
    console.log(`the main page's answers: ${JSON.stringify(expected)}`);
    assert.equal(Object.keys(expected).length, heldBack.length);
    for (const answer of Object.values(expected)) assert.ok(CLASSES.includes(answer.class), JSON.stringify(answer));

    await page.getByTestId("publish-app").click();
    await page.getByTestId("published").waitFor({ timeout: 120_000 });
    const zip = await save(page, "save-published-zip", "page.zip");
    const single = await save(page, "save-published-html", "page.html");
    const head = await save(page, "export-head", "head.safetensors");
    console.log(`published: zip ${readFileSync(zip).length} bytes, single file ${readFileSync(single).length} bytes`);

    // The CLI writes the same bytes from the exported head, and refuses another base model.
    assert.ok(existsSync(CLI), `no ${CLI}: the native build (cargo test --release) makes it`);
    for (const [out, fromPage] of [["cli.zip", zip], ["cli.html", single]]) {
      execFileSync(CLI, ["publish", "--head", head, "--model", MODEL, "--app", dist, "--out", path.join(work, out)], { stdio: "inherit" });
      assert.ok(readFileSync(path.join(work, out)).equals(readFileSync(fromPage)), `afinar publish --out ${out} differs from the page's`);
    }
    assert.throws(
      () => execFileSync(CLI, ["publish", "--head", head, "--model", OTHER_MODEL, "--app", dist, "--out", path.join(work, "other.html")], { stdio: "pipe" }),
      (e) => /another base model/.test(String(e.stderr)),
    );

    // The folder form, on a static server of its own.
    execFileSync("python3", ["-m", "zipfile", "-e", zip, path.join(work, "site")]);
    const site = await serve({ site: path.join(work, "site/afinar-classifier"), cache: false });
    try {
      const published = await browser.newContext();
      const seen = { requests: [], errors: [] };
      published.on("request", (r) => seen.requests.push(r.url()));
      const { page: app, answers } = await classifyIn(published, site.origin + "/", seen);
      assertSameAnswers(answers, expected, "the folder form");
      const about = await app.getByTestId("about").innerText();
      assert.match(about, /Trained with Afinar on \d{4}-\d\d-\d\d from \d+ photos/, about);
      assert.ok(about.includes(`${Number.parseFloat(accuracy).toFixed(1)} %`), `${about} vs ${accuracy}`);
      assert.deepEqual(await app.getByTestId("classes").locator("li").allInnerTexts(), CLASSES);
      // Dropped and pasted photos, and a frame of the camera (Chromium's synthetic one).
      const first = path.basename(heldBack[0]);
      for (const [kind, name] of [["drop", "dropped.jpg"], ["paste", "pasted.jpg"]]) {
        await app.evaluate(
          ({ kind, name, bytes }) => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], name, { type: "image/jpeg" }));
            const event = kind === "drop"
              ? new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true })
              : new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true });
            document.body.dispatchEvent(event);
          },
          { kind, name, bytes: [...readFileSync(heldBack[0])] },
        );
      }
      await app.getByTestId("camera-button").click();
      await app.waitForFunction(() => document.querySelector("#camera-video")?.videoWidth > 0, null, { timeout: 30_000 });
      await app.getByTestId("snap-button").click();
      await waitForAnswers(app, heldBack.length + 3);
      const more = await customAnswers(app);
      assertSameAnswers({ [first]: more["dropped.jpg"] }, { [first]: expected[first] }, "a dropped photo");
      assertSameAnswers({ [first]: more["pasted.jpg"] }, { [first]: expected[first] }, "a pasted photo");
      assert.ok(CLASSES.includes(more["Camera frame 1"]?.class), JSON.stringify(more["Camera frame 1"]));

      // Offline after the first visit: its service worker kept every file.
      await app.evaluate(async () => {
        await navigator.serviceWorker.ready;
        const keys = await caches.keys();
        const kept = (await (await caches.open(keys.find((k) => k.startsWith("afinar-published:")))).keys())
          .map((r) => new URL(r.url).pathname.slice(1));
        for (const name of ["", "index.html", "app.js", "style.css", "afinar-inference-worker.js", "afinar-inference-worker_bg.wasm", "model.tflite", "head.safetensors"]) {
          if (!kept.includes(name)) throw new Error(`${name || "./"} is not kept: ${kept}`);
        }
      });
      await published.setOffline(true);
      await app.reload();
      await app.getByTestId("model-status").filter({ hasText: "Ready" }).waitFor({ timeout: 120_000 });
      await app.getByTestId("photo-input").setInputFiles(heldBack.slice(0, 1));
      await waitForAnswers(app, 1);
      const offline = await customAnswers(app);
      const name = path.basename(heldBack[0]);
      assertSameAnswers({ [name]: offline[name] }, { [name]: expected[name] }, "the folder form, offline");

      const foreign = seen.requests.filter((u) => !u.startsWith(site.origin) && !/^(blob|data):/.test(u));
      assert.deepEqual(foreign, [], "the published folder asked another origin");
      assert.deepEqual(seen.errors, []);
      await published.close();
    } finally {
      await site.close();
    }

    // The single file, opened from the disk.
    const fromDisk = await browser.newContext();
    const seen = { requests: [], errors: [] };
    fromDisk.on("request", (r) => seen.requests.push(r.url()));
    const { page: fromFile, answers } = await classifyIn(fromDisk, "file://" + single, seen);
    assertSameAnswers(answers, expected, "the single file");
    // A file that is not a photo gets an error card with the reason.
    await fromFile.getByTestId("photo-input").setInputFiles({ name: "notes.jpg", mimeType: "image/jpeg", buffer: Buffer.from("not a photo at all") });
    await waitForAnswers(fromFile, heldBack.length + 1);
    const refused = await fromFile.locator('[data-testid="result"][data-name="notes.jpg"] [data-testid="error"]').innerText();
    assert.match(refused, /can't be read/, refused);
    const foreign = seen.requests.filter((u) => !/^(file|blob|data):/.test(u));
    assert.deepEqual(foreign, [], "the single file asked the network");
    assert.deepEqual(seen.errors, []);
  } finally {
    await browser.close();
  }
});
