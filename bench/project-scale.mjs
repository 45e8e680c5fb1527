// A large dataset in the page: the shared flower photos (all 3,470) plus copies under new names
// up to `--photos N` (default 5,000) are added as one folder, prepared and trained with the
// recipe the page picks for them, then the page is reloaded; last, the project is saved as one
// `.afinar` file and opened in a fresh browser profile. Prints each step's time, the page's JS
// heap, the worker's wasm memory and the longest main-thread task, and checks that no photo
// is lost on the way.
//
//   node bench/project-scale.mjs [--photos N] [--no-project]
import path from "node:path";
import os from "node:os";
import { copyFileSync, linkSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { serveDist, launch, openApp, waitForModel, shared, waitUntilPrepared, waitUntilSaved, inStore, photosInClasses, waitForPhotosInClasses } from "../tests/e2e/support.mjs";

const args = process.argv.slice(2);
const wanted = args.includes("--photos") ? Number(args[args.indexOf("--photos") + 1]) : 5000;
const withProject = !args.includes("--no-project");

/** The same JPEG with a comment segment after its start marker: other bytes, same pixels. */
function renamedCopy(jpeg, n) {
  const text = Buffer.from(`afinar bench copy ${n}`);
  const segment = Buffer.alloc(4 + text.length);
  segment.writeUInt16BE(0xfffe, 0);
  segment.writeUInt16BE(text.length + 2, 2);
  text.copy(segment, 4);
  return Buffer.concat([jpeg.subarray(0, 2), segment, jpeg.subarray(2)]);
}

// The photos, as a folder of class folders: the shared files (hard links, or copies: Playwright
// leaves symbolic links out of a folder it picks), taken in turn from each class, then copies
// under new names taken in turn from each class until there are `wanted`.
const folder = mkdtempSync(path.join(os.tmpdir(), "afinar-project-scale-"));
const flowers = path.join(shared, "data/flower_photos");
const classes = readdirSync(flowers).filter((f) => statSync(path.join(flowers, f)).isDirectory()).sort();
const lists = {};
let photos = 0;
for (const name of classes) {
  mkdirSync(path.join(folder, "flowers", name), { recursive: true });
  lists[name] = readdirSync(path.join(flowers, name)).filter((f) => f.endsWith(".jpg")).sort();
}
// One photo of each class in turn, so that a small N still has every class.
for (let i = 0; photos < wanted && classes.some((name) => i < lists[name].length); i++) {
  for (const name of classes) {
    const f = lists[name][i];
    if (photos === wanted || f === undefined) continue;
    const [from, to] = [path.join(flowers, name, f), path.join(folder, "flowers", name, f)];
    try {
      linkSync(from, to);
    } catch {
      copyFileSync(from, to);
    }
    photos += 1;
  }
}
for (let round = 0; photos < wanted; round++) {
  const name = classes[round % classes.length];
  const source = lists[name][Math.floor(round / classes.length) % lists[name].length];
  writeFileSync(path.join(folder, "flowers", name, `copy-${round}-${source}`), renamedCopy(readFileSync(path.join(flowers, name, source)), round));
  photos += 1;
}

const seconds = (start) => ((performance.now() - start) / 1000).toFixed(1);
const heapMb = async (page) => ((await page.evaluate(() => performance.memory?.usedJSHeapSize ?? 0)) / 1e6).toFixed(0);
const longest = async (page) => {
  const worst = await page.evaluate(() => Math.max(0, ...window.__longTasks.splice(0)));
  return `${worst.toFixed(0)} ms`;
};
const hour = { timeout: 3_600_000 };
function check(what, got) {
  if (got !== photos) throw new Error(`${what}: ${got} photos of ${photos}`);
}

const server = await serveDist();
const browser = await launch({ webgpu: false });
try {
  const first = await browser.newContext();
  const { page, seen } = await openApp(first, server.origin);
  // An off-the-record context keeps its storage in memory under a small quota, too small for
  // thousands of photos (the page would say the storage is full, and keep what fits): the
  // disk's quota instead, as a person's browser has.
  const cdp = await first.newCDPSession(page);
  await cdp.send("Storage.overrideQuotaForOrigin", { origin: server.origin, quotaSize: 20e9 });
  console.log(`storage quota: ${(await page.evaluate(async () => (await navigator.storage.estimate()).quota) / 1e9).toFixed(1)} GB`);
  await waitForModel(page);
  let start = performance.now();
  await page.getByTestId("dataset-folder-input").setInputFiles(path.join(folder, "flowers"));
  await waitUntilPrepared(page, hour);
  check("added", await photosInClasses(page));
  console.log(`${photos} photos added and prepared: ${seconds(start)} s; ${await page.getByTestId("recipe-summary").innerText()}`);
  console.log(`  page JS heap ${await heapMb(page)} MB; longest main-thread task ${await longest(page)}`);
  await waitUntilSaved(page, hour);
  console.log(`  ... and every photo saved in the browser: ${seconds(start)} s`);

  start = performance.now();
  await page.getByTestId("train-button").click();
  await page.getByTestId("training-done").waitFor({ timeout: 3_600_000 });
  const done = page.getByTestId("training-done");
  const memory = Number(await done.getAttribute("data-worker-memory"));
  const helpers = (await done.getAttribute("data-helper-memory")).split(",").filter(Boolean).map((b) => `${(Number(b) / 1e6).toFixed(0)} MB`);
  console.log(`trained: ${seconds(start)} s; ${await done.innerText()} Validation accuracy ${await page.getByTestId("val-accuracy").innerText()}`);
  console.log(`  worker wasm memory ${(memory / 1e6).toFixed(0)} MB${helpers.length ? `, its helpers' ${helpers.join(", ")}` : ""}; page JS heap ${await heapMb(page)} MB; longest main-thread task ${await longest(page)}`);

  // The head and the scores are written when the run ends.
  await waitUntilSaved(page, hour);
  start = performance.now();
  await page.reload();
  await waitForModel(page);
  await waitForPhotosInClasses(page, photos, hour);
  const back = seconds(start);
  console.log(`reloaded: every photo back in ${back} s`);
  await waitUntilPrepared(page, hour);
  await page.getByTestId("val-accuracy").waitFor({ timeout: 60_000 }).catch(async (e) => {
    const message = await page.getByTestId("training-message").innerText().catch(() => "(none)");
    const kept = await inStore(page, (db) => new Promise((resolve) => {
      const r = db.transaction("meta").objectStore("meta").getAllKeys();
      r.onsuccess = () => resolve(r.result);
    }));
    throw new Error(`no scores after the reload (the page says: ${message}; the store keeps: ${kept})`, { cause: e });
  });
  console.log(`  ready to train in ${seconds(start)} s (nothing prepared again); page JS heap ${await heapMb(page)} MB; longest main-thread task ${await longest(page)}`);
  const errors = seen.errors.filter((e) => !/favicon/.test(e));
  if (errors.length) throw new Error(`errors in the page: ${errors.join(" | ")}`);

  if (withProject) {
    start = performance.now();
    const [download] = await Promise.all([
      page.waitForEvent("download", { timeout: 3_600_000 }),
      page.getByTestId("save-project").click(),
    ]);
    const file = path.join(folder, "flowers.afinar");
    await download.saveAs(file);
    console.log(`saved as a project: ${seconds(start)} s, ${(statSync(file).size / 1e6).toFixed(1)} MB`);

    const second = await browser.newContext();
    const { page: other } = await openApp(second, server.origin);
    await waitForModel(other);
    start = performance.now();
    await other.getByTestId("open-project").setInputFiles(file);
    await other.getByTestId("training-message").filter({ hasText: "Opened flowers.afinar" }).waitFor({ timeout: 3_600_000 });
    check("opened", await photosInClasses(other));
    console.log(`opened in a fresh profile: ${seconds(start)} s (${await other.getByTestId("training-message").innerText()})`);
    await waitUntilPrepared(other, hour);
    console.log(`  ... and prepared there: ${seconds(start)} s; page JS heap ${await heapMb(other)} MB`);
  }
} finally {
  await browser.close();
  await server.close();
  rmSync(folder, { recursive: true, force: true });
}
