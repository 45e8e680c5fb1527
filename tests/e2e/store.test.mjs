// End-to-end: what the browser keeps between visits. A store that cannot be read in full (a
// class list that no longer parses, a photo record that is not one) is not taken for an empty
// one: the page shows what it could read, says so, and writes nothing over the rest.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import os from "node:os";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { serveDist, launch, openApp, waitForModel, waitUntilPrepared, copyFlowers, photosInClasses, waitForPhotosInClasses, inStore, storedPhotos, storedClasses } from "./support.mjs";

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
    await status.filter({ hasText: new RegExp(`Opening the project: [1-9]\\d* of ${total}`) }).waitFor({ timeout: 120_000 });
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
