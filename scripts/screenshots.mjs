// The README's screenshots, taken from the built dist/ in headless Chromium on the CPU:
// classify, gallery, training (with its curves, mid-run), scores, labels to check, the page at
// phone width, and the classifier published as a web app (opened as a single file from the disk).
// Run by `scripts/screenshots`; writes docs/screenshots/*.png.
import path from "node:path";
import os from "node:os";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { serveDist, launch, openApp, waitForModel, waitForResults, waitUntilPrepared, photo, rgbFixtureAsPng, root, shared } from "../tests/e2e/support.mjs";

const out = path.join(root, "docs/screenshots");
mkdirSync(out, { recursive: true });
const CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"];
const PER_CLASS = 24;

// Training photos as a user would pick them: one folder per class.
const folder = mkdtempSync(path.join(os.tmpdir(), "afinar-screenshots-"));
const unseen = [];
for (const name of CLASSES) {
  const from = path.join(shared, "data/flower_photos", name);
  const photos = readdirSync(from).filter((f) => f.endsWith(".jpg")).sort();
  mkdirSync(path.join(folder, "flowers", name), { recursive: true });
  for (const f of photos.slice(0, PER_CLASS)) copyFileSync(path.join(from, f), path.join(folder, "flowers", name, f));
  unseen.push(photo(`${name}/${photos[photos.length - 1]}`), photo(`${name}/${photos[photos.length - 2]}`));
}

/** The page, or the part of it that holds `locators` (all of them, with a margin). */
async function shoot(page, name, ...locators) {
  const file = path.join(out, `${name}.png`);
  if (locators.length === 0) {
    await page.screenshot({ path: file });
  } else {
    const boxes = await Promise.all(locators.map((l) => l.evaluate((e) => {
      const r = e.getBoundingClientRect();
      return { left: r.left + scrollX, top: r.top + scrollY, right: r.right + scrollX, bottom: r.bottom + scrollY };
    })));
    const m = 12;
    const x = Math.max(0, Math.min(...boxes.map((b) => b.left)) - m);
    const y = Math.max(0, Math.min(...boxes.map((b) => b.top)) - m);
    const clip = { x, y, width: Math.max(...boxes.map((b) => b.right)) + m - x, height: Math.max(...boxes.map((b) => b.bottom)) + m - y };
    await page.screenshot({ path: file, clip, fullPage: true });
  }
  console.log(`wrote ${path.relative(root, file)}`);
}

const server = await serveDist();
const browser = await launch({ webgpu: false });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const { page } = await openApp(context, server.origin);
  await waitForModel(page);

  // Classify: ImageNet's top-5 for a few photos.
  const first = [rgbFixtureAsPng("bird"), ...unseen.slice(0, 3)];
  await page.getByTestId("photo-input").setInputFiles(first);
  await waitForResults(page, first.length);
  await shoot(page, "classify", page.locator("header"), page.locator("section.photos"));

  // Gallery: more photos, top-1 each.
  await page.getByTestId("photo-input").setInputFiles(unseen.slice(3));
  await waitForResults(page, unseen.length + 1);
  await page.getByTestId("gallery-button").click();
  await shoot(page, "gallery", page.locator("section.intake"), page.locator("section.photos"));

  // Training: the page's own recipe for the photos, caught mid-run with its curves.
  await page.getByTestId("dataset-folder-input").setInputFiles(path.join(folder, "flowers"));
  await waitUntilPrepared(page, { timeout: 600_000 });
  await page.getByTestId("train-button").click();
  await page.waitForFunction(
    () => {
      const line = document.querySelector('[data-testid="curves"] .val-line');
      const points = (line?.getAttribute("points") ?? "").trim().split(/\s+/).filter(Boolean).length;
      return points >= 4 && document.querySelector('[data-testid="cancel-button"]');
    },
    null,
    { timeout: 600_000, polling: 500 },
  );
  await shoot(page, "training", page.getByTestId("training"));

  // Scores: the kept epoch, per-class table, confusion matrix; then the labels to check.
  await page.getByTestId("training-done").waitFor({ timeout: 900_000 });
  await page.waitForFunction(
    () => document.querySelector('[data-testid="labels-to-check"]') || /Labels checked/.test(document.querySelector('[data-testid="labels-status"]')?.textContent ?? ""),
    null,
    { timeout: 300_000, polling: 500 },
  );
  await page.locator('[data-testid="confusion-cell"][data-cell="0-0"]').click();
  await shoot(page, "scores", page.getByTestId("curves"), page.getByTestId("labels-to-check").or(page.getByTestId("labels-status")).first());

  // Publish: the two forms offered, then the single file opened from the disk.
  await page.getByTestId("publish-app").click();
  await page.getByTestId("published").waitFor({ timeout: 120_000 });
  await shoot(page, "publish", page.getByTestId("head-status"), page.getByTestId("published"));
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("save-published-html").click()]);
  const single = path.join(folder, "afinar-classifier.html");
  await download.saveAs(single);
  const published = await context.newPage();
  await published.goto("file://" + single);
  await published.getByTestId("model-status").filter({ hasText: "Ready" }).waitFor({ timeout: 120_000 });
  await published.getByTestId("photo-input").setInputFiles(unseen.slice(0, 3));
  await published.waitForFunction(() => document.querySelectorAll('[data-testid="custom-top"], [data-testid="error"]').length === 3);
  await shoot(published, "published-app", published.locator("main"));

  // Phone width: the classify view in a fresh profile.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
  const { page: small } = await openApp(phone, server.origin);
  await waitForModel(small);
  await small.getByTestId("photo-input").setInputFiles(unseen.slice(0, 2));
  await waitForResults(small, 2);
  await shoot(small, "phone");
} finally {
  await browser.close();
  await server.close();
  rmSync(folder, { recursive: true, force: true });
}
