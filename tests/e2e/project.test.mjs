// End-to-end: the whole project as one `.afinar` file: saved in one browser, refused when
// damaged or foreign (nothing lost), opened in a fresh browser profile, and read by the CLI.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import os from "node:os";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, copyFileSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { serveDist, launch, openApp, waitForModel, copyFlowers, root, waitUntilPrepared, photosInClasses, waitForPhotosInClasses } from "./support.mjs";

// The page starts with these five classes; a folder with photos for each fills them.
const CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"];
const PER_CLASS = 8;

let server;
let folder;
before(async () => {
  server = await serveDist();
  folder = mkdtempSync(path.join(os.tmpdir(), "afinar-project-"));
  copyFlowers(path.join(folder, "flowers"), CLASSES, PER_CLASS);
});
after(async () => {
  await server?.close();
  if (folder) rmSync(folder, { recursive: true, force: true });
});

async function classCounts(page) {
  const rows = page.getByTestId("class-row");
  const counts = {};
  for (let i = 0; i < (await rows.count()); i++) {
    counts[await rows.nth(i).getAttribute("data-class")] = await rows.nth(i).getByTestId("class-count").innerText();
  }
  return counts;
}

test("a saved project opens whole in a fresh profile and in the CLI; damaged and foreign files change nothing", async () => {
  const browser = await launch({ webgpu: false });
  try {
    // Build and train a project, then save it.
    const first = await browser.newContext();
    const { page, seen } = await openApp(first, server.origin);
    await waitForModel(page);
    await page.getByText("Recipe").click();
    await page.getByTestId("recipe-select").selectOption("quick");
    await page.getByTestId("dataset-folder-input").setInputFiles(path.join(folder, "flowers"));
    await waitUntilPrepared(page);
    await page.getByTestId("train-button").click();
    await page.getByTestId("training-done").waitFor({ timeout: 300_000 });
    const accuracy = await page.getByTestId("val-accuracy").innerText();
    const saved = await classCounts(page);
    // Per class: recall and the count of validation photos, as the page shows them.
    const perClass = await page.getByTestId("per-class").locator("tbody tr").evaluateAll((rows) =>
      rows.map((r) => [r.querySelector("th").innerText, r.cells[1].innerText, r.cells[4].innerText]),
    );
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("save-project").click()]);
    assert.equal(download.suggestedFilename(), "afinar-project.afinar");
    const file = path.join(folder, "flowers.afinar");
    await download.saveAs(file);
    await page.getByTestId("training-message").filter({ hasText: `Saved afinar-project.afinar` }).waitFor({ timeout: 30_000 });
    console.log(await page.getByTestId("training-message").innerText());
    assert.deepEqual(seen.errors.filter((e) => !/favicon/.test(e)), []);

    // Over this profile's photos and head: a cut-short file, a photo named .afinar and every
    // hostile project of tests/hostile/ (zip-slip names, a bomb named 2,000 times, an absurd
    // recipe…) are refused with the reason, and the photos, the head and the scores stay, also
    // after a reload.
    const bytes = readFileSync(file);
    const cut = path.join(folder, "cut.afinar");
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const jpeg = path.join(folder, "photo.afinar");
    copyFileSync(path.join(folder, "flowers/daisy", readdirSync(path.join(folder, "flowers/daisy"))[0]), jpeg);
    const hostileDir = path.join(root, "tests/hostile/project");
    const refusals = [
      [cut, "the project file is damaged"],
      [jpeg, "this is not an Afinar project file"],
      ...readdirSync(hostileDir).sort().map((f) => [path.join(hostileDir, f), "the project file is refused"]),
    ];
    page.on("dialog", (d) => d.accept());
    for (const [bad, why] of refusals) {
      await page.getByTestId("open-project").setInputFiles(bad);
      await page.getByTestId("training-message").filter({ hasText: `${path.basename(bad)}: ${why}` }).waitFor({ timeout: 60_000 });
      assert.match(await page.getByTestId("training-message").innerText(), /Nothing was changed/);
      assert.deepEqual(await classCounts(page), saved, path.basename(bad));
    }
    console.log(`${refusals.length} damaged, foreign and hostile files refused over a trained project`);
    await page.reload();
    await waitForModel(page);
    await page.getByTestId("head-status").filter({ hasText: "daisy" }).waitFor({ timeout: 60_000 });
    assert.deepEqual(await classCounts(page), saved);
    assert.equal(await page.getByTestId("val-accuracy").innerText(), accuracy);

    // The CLI reads the page's file: the same classes, the project's head and split, the same
    // validation accuracy as the page showed.
    const cli = path.join(root, "target/release/afinar");
    assert.ok(existsSync(cli), `${cli} is built by the native tests (cargo test --release)`);
    const out = execFileSync(cli, ["eval", "--data", file, "--json", "--no-cache"], { cwd: root, encoding: "utf8" });
    const scores = JSON.parse(out.trim().split("\n").pop());
    assert.deepEqual(scores.classes, CLASSES);
    console.log(`afinar eval on the saved project: ${(scores.accuracy * 100).toFixed(1)} % (page: ${accuracy})`);
    assert.equal(`${(scores.accuracy * 100).toFixed(1)} %`, accuracy);
    assert.deepEqual(
      CLASSES.map((c) => [c, `${(scores.per_class[c].recall * 100).toFixed(1)} %`, String(scores.per_class[c].photos)]),
      perClass,
    );

    // A fresh profile: a cut-short file and a photo named .afinar are refused; nothing changes.
    const second = await browser.newContext();
    const { page: other, seen: otherSeen } = await openApp(second, server.origin);
    await waitForModel(other);
    const before = await classCounts(other);
    await other.getByTestId("open-project").setInputFiles(cut);
    await other.getByTestId("training-message").filter({ hasText: "cut.afinar: the project file is damaged" }).waitFor({ timeout: 60_000 });
    assert.match(await other.getByTestId("training-message").innerText(), /Nothing was changed/);
    await other.getByTestId("open-project").setInputFiles(jpeg);
    await other.getByTestId("training-message").filter({ hasText: "not an Afinar project file" }).waitFor({ timeout: 60_000 });
    assert.deepEqual(await classCounts(other), before);
    // Larger than the page's worker can hold (a sparse file: nothing is written to disk):
    // refused from its size, before a byte is read.
    const huge = path.join(folder, "huge.afinar");
    writeFileSync(huge, "");
    truncateSync(huge, Math.round(1.2 * 2 ** 30));
    await other.getByTestId("open-project").setInputFiles(huge);
    await other.getByTestId("training-message").filter({ hasText: "huge.afinar: it is 1.20 GiB" }).waitFor({ timeout: 60_000 });
    assert.match(await other.getByTestId("training-message").innerText(), /Nothing was changed/);
    rmSync(huge);
    assert.deepEqual(await classCounts(other), before);

    // The saved file opens whole: classes, photos, the head and the last scores.
    await other.getByTestId("open-project").setInputFiles(file);
    await other.getByTestId("training-message").filter({ hasText: "Opened flowers.afinar" }).waitFor({ timeout: 120_000 });
    console.log(await other.getByTestId("training-message").innerText());
    // They are prepared again for this browser (features are not in the file).
    await waitUntilPrepared(other);
    assert.deepEqual(await classCounts(other), saved);
    await other.getByTestId("head-status").filter({ hasText: "daisy" }).waitFor({ timeout: 60_000 });
    assert.equal(await other.getByTestId("val-accuracy").innerText(), accuracy);
    // It is this profile's project now: a reload keeps it.
    await other.reload();
    await waitForModel(other);
    await other.getByTestId("head-status").filter({ hasText: "daisy" }).waitFor({ timeout: 60_000 });
    assert.deepEqual(await classCounts(other), saved);

    // Opening over photos asks first; declining keeps them.
    other.once("dialog", (d) => d.dismiss());
    await other.getByTestId("open-project").setInputFiles(file);
    await other.waitForTimeout(500);
    assert.equal(await other.getByTestId("project-status").innerText(), "");
    assert.deepEqual(await classCounts(other), saved);
    assert.deepEqual(otherSeen.errors.filter((e) => !/favicon/.test(e)), []);
  } finally {
    await browser.close();
  }
});

// Chromium counts blobs written to IndexedDB against a quota late (CDP's quota override lets a
// page write well past it), so the browser's refusal is played here the way browsers report
// it: past a budget of bytes, the write's transaction is aborted with a QuotaExceededError.
function refuseWritesPast(budget) {
  let used = 0;
  const put = IDBObjectStore.prototype.put;
  IDBObjectStore.prototype.put = function (value, key) {
    const size = Object.values(value ?? {}).reduce((n, v) => n + (v instanceof Blob ? v.size : v?.byteLength ?? String(v ?? "").length), 0);
    used += size;
    const request = put.call(this, value, key);
    if (used > budget) {
      const tx = this.transaction;
      Object.defineProperty(tx, "error", { value: new DOMException("The quota has been exceeded.", "QuotaExceededError") });
      tx.abort();
    }
    return request;
  };
}

test("when the browser's storage for the page is full, the page says so and what it stored survives a reload", async () => {
  const browser = await launch({ webgpu: false });
  try {
    const context = await browser.newContext();
    // Room for about half of the 40 photos (their files and their features).
    await context.addInitScript(refuseWritesPast, 1_000_000);
    const { page, seen } = await openApp(context, server.origin);
    await waitForModel(page);

    await page.getByTestId("dataset-folder-input").setInputFiles(path.join(folder, "flowers"));
    await waitUntilPrepared(page);
    const message = page.getByTestId("training-message");
    await message.filter({ hasText: "storage for the page is full" }).waitFor({ timeout: 60_000 });
    const total = CLASSES.length * PER_CLASS;
    assert.equal(await photosInClasses(page), total, "every photo is used in this visit");
    // Every write has been answered once the photos are prepared and the message has settled.
    await page.waitForTimeout(2_000);
    const said = await message.innerText();
    console.log(`storage full: ${said}`);
    const notKept = Number(/(\d+) photos? added since/.exec(said)?.[1]);
    const kept = Number(/the (\d+) kept before are safe/.exec(said)?.[1]);
    assert.ok(notKept >= 1 && kept >= 1 && notKept + kept === total, said);

    // What the page said it kept is what a reload finds.
    await page.reload();
    await waitForModel(page);
    await waitForPhotosInClasses(page, kept);
    assert.deepEqual(seen.errors.filter((e) => /panic|RuntimeError/.test(e)), []);
  } finally {
    await browser.close();
  }
});
