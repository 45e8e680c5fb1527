// A large project in the page: the shared flower photos (all 3,470 by default) are added and
// prepared with the quick recipe, saved as one `.afinar` file, then opened in a fresh browser
// profile and prepared there. Prints each step's time, the file's size and the page's JS heap.
//
//   node bench/project-scale.mjs [--photos-per-class N]
import path from "node:path";
import os from "node:os";
import { mkdtempSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { serveDist, launch, openApp, waitForModel, shared } from "../tests/e2e/support.mjs";

const args = process.argv.slice(2);
const perClass = args.includes("--photos-per-class") ? Number(args[args.indexOf("--photos-per-class") + 1]) : Infinity;

// The photos, as a folder of class folders (links to the shared files).
const folder = mkdtempSync(path.join(os.tmpdir(), "afinar-project-scale-"));
const flowers = path.join(shared, "data/flower_photos");
let photos = 0;
for (const name of readdirSync(flowers).filter((f) => statSync(path.join(flowers, f)).isDirectory()).sort()) {
  mkdirSync(path.join(folder, "flowers", name), { recursive: true });
  for (const f of readdirSync(path.join(flowers, name)).filter((f) => f.endsWith(".jpg")).sort().slice(0, perClass)) {
    symlinkSync(path.join(flowers, name, f), path.join(folder, "flowers", name, f));
    photos += 1;
  }
}

const seconds = (start) => ((performance.now() - start) / 1000).toFixed(1);
const heapMb = (page) => page.evaluate(() => (performance.memory?.usedJSHeapSize ?? 0) / 1e6);
async function waitUntilPrepared(page) {
  await page.waitForFunction(() => document.querySelector('[data-testid="train-button"]')?.disabled === false, null, { timeout: 3_600_000, polling: 1000 });
}

const server = await serveDist();
const browser = await launch({ webgpu: false });
try {
  const first = await browser.newContext();
  const { page } = await openApp(first, server.origin);
  await waitForModel(page);
  await page.getByText("Recipe").click();
  await page.getByTestId("recipe-select").selectOption("quick");
  let start = performance.now();
  await page.getByTestId("dataset-folder-input").setInputFiles(path.join(folder, "flowers"));
  await waitUntilPrepared(page);
  console.log(`${photos} photos added and prepared: ${seconds(start)} s`);

  start = performance.now();
  const [download] = await Promise.all([
    page.waitForEvent("download", { timeout: 3_600_000 }),
    page.getByTestId("save-project").click(),
  ]);
  const file = path.join(folder, "flowers.afinar");
  await download.saveAs(file);
  console.log(`saved: ${seconds(start)} s, ${(statSync(file).size / 1e6).toFixed(1)} MB; page JS heap ${(await heapMb(page)).toFixed(0)} MB`);

  const second = await browser.newContext();
  const { page: other } = await openApp(second, server.origin);
  await waitForModel(other);
  start = performance.now();
  await other.getByTestId("open-project").setInputFiles(file);
  await other.getByTestId("training-message").filter({ hasText: "Opened flowers.afinar" }).waitFor({ timeout: 3_600_000 });
  console.log(`opened in a fresh profile: ${seconds(start)} s (${await other.getByTestId("training-message").innerText()})`);
  await waitUntilPrepared(other);
  console.log(`... and prepared there: ${seconds(start)} s; page JS heap ${(await heapMb(other)).toFixed(0)} MB`);
  start = performance.now();
  await other.reload();
  await waitForModel(other);
  const counts = await other.getByTestId("class-count").allInnerTexts();
  console.log(`after a reload (${seconds(start)} s): ${counts.join(", ")}`);
} finally {
  await browser.close();
  await server.close();
  rmSync(folder, { recursive: true, force: true });
}
