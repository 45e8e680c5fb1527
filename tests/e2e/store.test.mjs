// End-to-end: what the browser keeps between visits. A store that cannot be read in full (a
// class list that no longer parses, a photo record that is not one) is not taken for an empty
// one: the page shows what it could read, says so, and writes nothing over the rest. A store of
// an older schema is migrated forward.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import os from "node:os";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { serveDist, launch, openApp, waitForModel, waitUntilPrepared, waitUntilSaved, leavingAsks, copyFlowers, photosInClasses, waitForPhotosInClasses, inStore, storedPhotos, storedClasses, dist, shared } from "./support.mjs";

const CLASSES = ["daisy", "roses"];
const PER_CLASS = 3;
// The page's starting classes: training needs photos in each.
const ALL_CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"];
// Photos per class of a project large enough to be opened over several seconds.
const BIG_PER_CLASS = 40;

let server;
let folder;
before(async () => {
  server = await serveDist();
  folder = mkdtempSync(path.join(os.tmpdir(), "afinar-store-"));
  copyFlowers(path.join(folder, "flowers"), CLASSES, PER_CLASS);
  copyFlowers(path.join(folder, "more"), ["tulips"], PER_CLASS);
  copyFlowers(path.join(folder, "all"), ALL_CLASSES, PER_CLASS);
  copyFlowers(path.join(folder, "extra"), ["dandelion"], PER_CLASS);
  copyFlowers(path.join(folder, "big"), ALL_CLASSES, BIG_PER_CLASS);
});
after(async () => {
  await server?.close();
  if (folder) rmSync(folder, { recursive: true, force: true });
});

test("a store that cannot be read in full is shown as far as it reads and left untouched", async () => {
  const browser = await launch({ webgpu: false });
  try {
    const context = await browser.newContext();
    const { page, seen } = await openApp(context, server.origin);
    await waitForModel(page);
    await page.getByTestId("dataset-folder-input").setInputFiles(path.join(folder, "flowers"));
    await waitForPhotosInClasses(page, CLASSES.length * PER_CLASS);
    for (let i = 0; (await storedPhotos(page)) < CLASSES.length * PER_CLASS; i++) {
      assert.ok(i < 120, "the photos were stored");
      await page.waitForTimeout(500);
    }

    // A class list that no longer parses and a record that is not a photo.
    await inStore(page, (db) => new Promise((resolve, reject) => {
      const tx = db.transaction(["meta", "photos"], "readwrite");
      tx.objectStore("meta").put("{this is not a class list", "classes");
      tx.objectStore("photos").put({ something: "else" }, 999_999);
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    }));
    const photos = await storedPhotos(page);
    assert.equal(photos, CLASSES.length * PER_CLASS + 1);

    await page.reload();
    await waitForModel(page);
    const message = page.getByTestId("training-message");
    await message.filter({ hasText: "could not be read in full" }).waitFor({ timeout: 60_000 });
    const text = await message.innerText();
    console.log(text);
    assert.match(text, /the stored classes/);
    assert.match(text, /1 of the stored photos/);
    assert.match(text, /nothing will be written over it/);
    // Every readable photo is there, in a class of its own id.
    await waitForPhotosInClasses(page, CLASSES.length * PER_CLASS);
    const rows = await page.getByTestId("class-row").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-class")));
    assert.deepEqual(rows, ["Class 1", "Class 2"]);

    // A photo added now is used but not written; the store stays as it was, also after a
    // second reload.
    await page.getByTestId("dataset-folder-input").setInputFiles(path.join(folder, "more"));
    await waitForPhotosInClasses(page, (CLASSES.length + 1) * PER_CLASS);
    await page.waitForTimeout(1000);
    assert.equal(await storedPhotos(page), photos);
    assert.equal(await storedClasses(page), "{this is not a class list");
    await page.reload();
    await waitForModel(page);
    await message.filter({ hasText: "could not be read in full" }).waitFor({ timeout: 60_000 });
    assert.equal(await photosInClasses(page), CLASSES.length * PER_CLASS);
    assert.equal(await storedPhotos(page), photos);
    assert.equal(await storedClasses(page), "{this is not a class list");

    // What could be read is saved as a project.
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("save-project").click()]);
    const file = path.join(folder, "rescued.afinar");
    await download.saveAs(file);
    assert.ok(statSync(file).size > 10_000);
    assert.deepEqual(seen.errors.filter((e) => !/favicon/.test(e)), []);
  } finally {
    await browser.close();
  }
});

test("a head that stops the model worker is set aside, and the next visit starts clean with the photos", async () => {
  const browser = await launch({ webgpu: false });
  try {
    const context = await browser.newContext();
    // While the test asks for it, the model worker "stops" on every head it is given, the way
    // a worker that panics does: when it would take the head up (it handles requests in order,
    // so once its model is loaded), its error event reaches the page instead of an answer.
    await context.addInitScript(() => {
      const post = Worker.prototype.postMessage;
      const said = (event, what) => event.data && typeof event.data === "object" && what in event.data;
      Worker.prototype.postMessage = function (message, ...rest) {
        if (!this.__watched) {
          this.__watched = true;
          this.addEventListener("message", (e) => {
            if (said(e, "ModelReady")) this.__modelReady = true;
          });
        }
        if (localStorage.getItem("afinar-test-stop-on-head") && said({ data: message }, "UseHead")) {
          const stop = () => setTimeout(() => this.dispatchEvent(new ErrorEvent("error", { message: "simulated stop on the head" })), 0);
          if (this.__modelReady) stop();
          else this.addEventListener("message", (e) => said(e, "ModelReady") && stop());
          return undefined;
        }
        return post.call(this, message, ...rest);
      };
    });
    const { page } = await openApp(context, server.origin);
    await waitForModel(page);
    await page.getByText("Recipe").click();
    await page.getByTestId("recipe-select").selectOption("quick");
    await page.getByTestId("dataset-folder-input").setInputFiles(path.join(folder, "all"));
    await waitUntilPrepared(page);
    await page.getByTestId("train-button").click();
    await page.getByTestId("training-done").waitFor({ timeout: 300_000 });
    const head = page.getByTestId("head-status");
    await head.filter({ hasText: "daisy" }).waitFor({ timeout: 30_000 });

    // The next visit gives the kept head to the worker, which stops on it: the head is set
    // aside (said), the worker comes back without it, the photos stay.
    await page.evaluate(() => localStorage.setItem("afinar-test-stop-on-head", "1"));
    await page.reload();
    await waitForModel(page);
    const message = page.getByTestId("training-message");
    await message.filter({ hasText: "Your trained head was set aside" }).waitFor({ timeout: 60_000 });
    console.log(await message.innerText());
    await waitForPhotosInClasses(page, ALL_CLASSES.length * PER_CLASS);
    await head.filter({ hasText: "No trained head yet" }).waitFor({ timeout: 30_000 });

    // It is no longer replayed: the visit after starts clean, photos and classes kept.
    await page.evaluate(() => localStorage.removeItem("afinar-test-stop-on-head"));
    await page.reload();
    await waitForModel(page);
    await waitForPhotosInClasses(page, ALL_CLASSES.length * PER_CLASS);
    assert.match(await head.innerText(), /No trained head yet/);
    assert.equal(await message.filter({ hasText: "set aside" }).count(), 0);
    // The photos still classify.
    await page.getByTestId("photo-input").setInputFiles(path.join(folder, "more/tulips", readdirSync(path.join(folder, "more/tulips"))[0]));
    await page.locator('[data-testid="result"]:not(.waiting)').first().waitFor({ timeout: 60_000 });
  } finally {
    await browser.close();
  }
});

/** Waits until the page's store holds `n` photos. */
async function waitForStoredPhotos(page, n) {
  for (let i = 0; (await storedPhotos(page)) !== n; i++) {
    assert.ok(i < 120, `the store holds ${await storedPhotos(page)} photos, not ${n}`);
    await page.waitForTimeout(500);
  }
}

/** Photos per class, as the class rows count them. */
function classCounts(page) {
  return page.getByTestId("class-row").evaluateAll((rows) =>
    Object.fromEntries(rows.map((r) => [r.getAttribute("data-class"), Number.parseInt(r.querySelector('[data-testid="class-count"]').textContent, 10) || 0])),
  );
}

test("two tabs never write over each other: the newest keeps the photos, and the other takes them back whole", async () => {
  const browser = await launch({ webgpu: false });
  try {
    const context = await browser.newContext();
    const { page: first, seen } = await openApp(context, server.origin);
    await waitForModel(first);
    await first.getByTestId("dataset-folder-input").setInputFiles(path.join(folder, "flowers"));
    await waitForPhotosInClasses(first, CLASSES.length * PER_CLASS);

    // A second tab, opened while the first is still writing and preparing its photos, takes
    // them over once the first is done; the first says where they went and keeps nothing.
    const { page: second, seen: secondSeen } = await openApp(context, server.origin);
    await first.getByTestId("use-here").waitFor({ timeout: 60_000 });
    assert.match(await first.getByTestId("other-tab").innerText(), /opened in another tab/);
    await waitForPhotosInClasses(second, CLASSES.length * PER_CLASS);
    await second.getByTestId("dataset-folder-input").setInputFiles(path.join(folder, "more"));
    await waitForPhotosInClasses(second, (CLASSES.length + 1) * PER_CLASS);
    await waitForStoredPhotos(second, (CLASSES.length + 1) * PER_CLASS);

    // The first takes them back, with the second tab's photos, and adds its own (brought to
    // the front, as a person does: the browser holds back a tab behind another).
    await first.bringToFront();
    await first.getByTestId("use-here").click();
    await second.getByTestId("use-here").waitFor({ timeout: 60_000 });
    await waitForPhotosInClasses(first, (CLASSES.length + 1) * PER_CLASS);
    await first.getByTestId("dataset-folder-input").setInputFiles(path.join(folder, "extra"));
    const all = (CLASSES.length + 2) * PER_CLASS;
    await waitForPhotosInClasses(first, all);
    await waitForStoredPhotos(first, all);

    // Every photo of both tabs is kept, each once, in its class.
    await first.reload();
    await waitForPhotosInClasses(first, all);
    const expected = { daisy: PER_CLASS, dandelion: PER_CLASS, roses: PER_CLASS, sunflowers: 0, tulips: PER_CLASS };
    assert.deepEqual(await classCounts(first), expected);
    assert.equal(await storedPhotos(first), all);
    assert.equal(await second.getByTestId("dataset-folder-input").count(), 0, "the other tab adds nothing");
    assert.deepEqual([...seen.errors, ...secondSeen.errors].filter((e) => !/favicon/.test(e)), []);
  } finally {
    await browser.close();
  }
});

test("a reload in the middle of opening a project leaves the project there was whole, and an opened one is kept whole", async () => {
  const browser = await launch({ webgpu: false });
  try {
    // A project of 200 photos, saved from another profile.
    const maker = await browser.newContext();
    const { page: making } = await openApp(maker, server.origin);
    await waitForModel(making);
    await making.getByTestId("dataset-folder-input").setInputFiles(path.join(folder, "big"));
    const total = ALL_CLASSES.length * BIG_PER_CLASS;
    await waitForPhotosInClasses(making, total);
    const [download] = await Promise.all([making.waitForEvent("download", { timeout: 300_000 }), making.getByTestId("save-project").click()]);
    const big = path.join(folder, "big.afinar");
    await download.saveAs(big);
    await maker.close();

    const context = await browser.newContext();
    const { page, seen } = await openApp(context, server.origin);
    await waitForModel(page);
    await page.getByTestId("dataset-folder-input").setInputFiles(path.join(folder, "flowers"));
    await waitForPhotosInClasses(page, CLASSES.length * PER_CLASS);
    await waitForStoredPhotos(page, CLASSES.length * PER_CLASS);
    const before = await classCounts(page);
    page.on("dialog", (d) => d.accept());

    // Reloaded while the project's photos arrive: the photos there were, whole.
    await page.getByTestId("open-project").setInputFiles(big);
    const status = page.getByTestId("project-status");
    // Each "N of 200" lasts as long as one batch: checked every 10 ms, where a locator's
    // back-off polling (up to 1 s apart) can step over all of them on a fast run.
    await page.waitForFunction(
      (total) => new RegExp(`Opening the project: [1-9]\\d* of ${total}`)
        .test(document.querySelector('[data-testid="project-status"]')?.textContent ?? ""),
      total,
      { polling: 10, timeout: 120_000 },
    );
    console.log(`reloaded at: ${await status.innerText()}`);
    await page.reload();
    await waitForPhotosInClasses(page, CLASSES.length * PER_CLASS);
    assert.deepEqual(await classCounts(page), before);
    assert.equal(await storedPhotos(page), CLASSES.length * PER_CLASS);

    // Opened to the end: the new project, whole, also after a reload.
    await page.getByTestId("open-project").setInputFiles(big);
    await page.getByTestId("training-message").filter({ hasText: "Opened big.afinar" }).waitFor({ timeout: 300_000 });
    await waitForStoredPhotos(page, total);
    await page.reload();
    await waitForPhotosInClasses(page, total);
    assert.deepEqual(await classCounts(page), Object.fromEntries(ALL_CLASSES.map((c) => [c, BIG_PER_CLASS])));
    assert.deepEqual(seen.errors.filter((e) => !/favicon/.test(e)), []);
  } finally {
    await browser.close();
  }
});

/** The sha256 of a file, as the page names models. */
function sha256(file) {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

/** Each stored photo's model tag and first feature, by id. */
const storedPreparation = (page) =>
  inStore(page, (db) => new Promise((resolve) => {
    const r = db.transaction("photos").objectStore("photos").getAll();
    r.onsuccess = () => resolve({ version: db.version, photos: r.result.map((p) => ({ id: p.id, classId: p.classId, name: p.name, model: p.model ?? null, first: p.features ? p.features[0] : null })) });
  }));

/** Waits until every stored photo was prepared by the model of sha256 `model`. */
async function waitForStoredModel(page, model, n) {
  for (let i = 0; ; i++) {
    const stored = await storedPreparation(page);
    if (stored.photos.length === n && stored.photos.every((p) => p.model === model)) return stored;
    assert.ok(i < 240, `photos prepared by ${model}: ${JSON.stringify(stored)}`);
    await page.waitForTimeout(500);
  }
}

test("a store of the previous schema is migrated: photos and classes kept, and photos prepared by another model are prepared again", async () => {
  const browser = await launch({ webgpu: false });
  try {
    const context = await browser.newContext();
    // Version 1 of the store, as the last build wrote it: photos prepared without a note of
    // the model (features here that no model computes), written from a page of the app's
    // origin that is not the app. Each record also carries the app model's tag, as a version 2
    // record would: only the migration, which drops version 1's prepared rows whatever they
    // hold, has them prepared again.
    const app = sha256(path.join(dist, "models", readdirSync(path.join(dist, "models")).find((f) => f.endsWith(".tflite"))));
    const files = CLASSES.flatMap((name, classId) =>
      readdirSync(path.join(folder, "flowers", name)).sort().map((file) => ({ classId, name: file, bytes: readFileSync(path.join(folder, "flowers", name, file)).toString("base64") })));
    const old = await context.newPage();
    await old.goto(server.origin + "/sw.js");
    await old.evaluate(({ files, classes, app }) => new Promise((resolve, reject) => {
      const open = indexedDB.open("afinar-training", 1);
      open.onupgradeneeded = () => {
        open.result.createObjectStore("photos");
        open.result.createObjectStore("meta");
      };
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const db = open.result;
        const tx = db.transaction(["photos", "meta"], "readwrite");
        files.forEach((f, id) => {
          const bytes = Uint8Array.from(atob(f.bytes), (c) => c.charCodeAt(0));
          tx.objectStore("photos").put({
            id, classId: f.classId, name: f.name, blob: new Blob([bytes], { type: "image/jpeg" }),
            features: new Float32Array(1280).fill(0.5), imagenet: "[]", sha256: "old", thumb: new Uint8Array(0), model: app,
          }, id);
        });
        tx.objectStore("meta").put(JSON.stringify(classes.map((name, id) => ({ id, name }))), "classes");
        tx.oncomplete = () => { db.close(); resolve(); };
        tx.onerror = () => reject(tx.error);
      };
    }), { files, classes: CLASSES, app });
    await old.close();

    const { page, seen } = await openApp(context, server.origin);
    await waitForModel(page);
    const n = CLASSES.length * PER_CLASS;
    await waitForPhotosInClasses(page, n);
    assert.deepEqual(await classCounts(page), { daisy: PER_CLASS, roses: PER_CLASS });
    const migrated = await waitForStoredModel(page, app, n);
    assert.equal(migrated.version, 2);
    assert.deepEqual(migrated.photos.map((p) => [p.id, p.classId, p.name]), files.map((f, id) => [id, f.classId, f.name]));
    assert.ok(migrated.photos.every((p) => p.first !== 0.5), "prepared again by the model");
    await waitUntilPrepared(page);

    // Another model file: every photo is prepared again by it, and by the app's model once
    // that is back after a reload.
    const other = path.join(shared, "models/tf2_mobilenet_v2_1.0_224_ptq.tflite");
    await page.getByTestId("model-input").setInputFiles({
      name: "tf2_ptq.tflite", mimeType: "application/octet-stream", buffer: readFileSync(other),
    });
    // Train before the worker has the new model: the photos' features are the old model's.
    // Clicked from the page itself, at once: Playwright's own click (it waits for the button to
    // be stable) can come after the worker has read and packed the file.
    await page.evaluate(() => document.querySelector('[data-testid="train-button"]').click());
    await page.getByTestId("training-message").filter({ hasText: "still loading" }).waitFor({ timeout: 10_000 });
    await page.getByTestId("model-ready").filter({ hasText: "tf2_ptq.tflite" }).waitFor({ timeout: 120_000 });
    await waitForStoredModel(page, sha256(other), n);
    await waitUntilPrepared(page);
    await page.reload();
    await waitForModel(page);
    await waitForStoredModel(page, app, n);
    await waitForPhotosInClasses(page, n);
    assert.deepEqual(seen.errors.filter((e) => !/favicon/.test(e)), []);
  } finally {
    await browser.close();
  }
});

test("leaving the page while photos are still being saved asks first, and not once they are", async () => {
  const browser = await launch({ webgpu: false });
  try {
    const context = await browser.newContext();
    const { page, seen } = await openApp(context, server.origin);
    await waitForModel(page);
    // Opening the store and reading it back counts as work under way, and may still be going on
    // when the model is ready (on a slow machine): once it is done, there is nothing to save.
    await waitUntilSaved(page, { timeout: 30_000 });
    await page.getByTestId("dataset-folder-input").setInputFiles(path.join(folder, "big"));
    assert.equal(await leavingAsks(page), true, "200 photos being saved, and leaving did not ask");
    await waitUntilPrepared(page);
    await waitUntilSaved(page);
    assert.equal(await storedPhotos(page), ALL_CLASSES.length * BIG_PER_CLASS);
    assert.deepEqual(seen.errors.filter((e) => !/favicon/.test(e)), []);
  } finally {
    await browser.close();
  }
});
