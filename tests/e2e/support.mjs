// Helpers for the end-to-end tests: a plain static file server for dist/, the system Chromium,
// and test photos from ../shared.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { deflateSync } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../bench/serve.mjs";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const dist = path.join(root, "dist");
export const shared = process.env.AFINAR_SHARED ?? path.join(root, "../shared");

/** Copies the first `perClass` photos (in name order) of each of `classes` from the shared
 * flowers set into `dest/<class>/`, as a folder of class folders a user would pick. */
export function copyFlowers(dest, classes, perClass) {
  for (const name of classes) {
    const from = path.join(shared, "data/flower_photos", name);
    mkdirSync(path.join(dest, name), { recursive: true });
    for (const f of readdirSync(from).filter((f) => f.endsWith(".jpg")).sort().slice(0, perClass)) {
      copyFileSync(path.join(from, f), path.join(dest, name, f));
    }
  }
}

/** Serves dist/ as plain files on 127.0.0.1 (no HTTP caching: the tests check the app's own
 * cache) and records every path asked for. */
export async function serveDist() {
  if (!existsSync(path.join(dist, "index.html"))) {
    throw new Error(`no built app in ${dist}: run \`trunk build --release\` first`);
  }
  return serve({ cache: false });
}

/** Debian's Chromium, headless; WebGPU on (a software adapter where there is no GPU). */
export function launch({ webgpu = true } = {}) {
  const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
  const args = [
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
    // A synthetic camera (a moving test pattern), allowed without a prompt.
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  ];
  if (webgpu) args.push("--enable-unsafe-webgpu");
  return chromium.launch({ executablePath, args });
}

/** A page that records long main-thread tasks, requests and console errors. */
export async function openApp(context, origin) {
  const page = await context.newPage();
  const seen = { requests: [], errors: [] };
  context.on("request", (r) => seen.requests.push(r.url()));
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") seen.errors.push(m.text());
  });
  await page.addInitScript(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__longTasks.push(entry.duration);
    }).observe({ type: "longtask", buffered: true });
  });
  await page.goto(origin + "/");
  return { page, seen };
}

export async function waitForModel(page) {
  const ready = page.getByTestId("model-ready");
  const failed = page.getByTestId("model-error");
  await ready.or(failed).first().waitFor({ timeout: 180_000 });
  if (await failed.count()) throw new Error(`the model did not load: ${await failed.innerText()}`);
}

/** Waits until every training photo is prepared (the Train button is enabled). */
export async function waitUntilPrepared(page, { timeout = 300_000 } = {}) {
  await page.waitForFunction(() => document.querySelector('[data-testid="train-button"]')?.disabled === false, null, { timeout, polling: 500 });
}

/** Whether the page asks before it is left: its beforeunload handler cancels the event while
 * it still has photos to save (or is opening its store). */
export function leavingAsks(page) {
  return page.evaluate(() => {
    const event = new Event("beforeunload", { cancelable: true });
    window.dispatchEvent(event);
    return event.defaultPrevented;
  });
}

/** Waits until the page has nothing left to save: it no longer asks before it is left. */
export async function waitUntilSaved(page, { timeout = 60_000 } = {}) {
  for (const start = Date.now(); await leavingAsks(page); ) {
    if (Date.now() - start > timeout) throw new Error(`still saving after ${timeout} ms`);
    await page.waitForTimeout(250);
  }
}

/** The training photos in all classes, as the class rows count them. */
export function photosInClasses(page) {
  return page.evaluate(countPhotosInClasses);
}

/** Waits until the class rows count `n` training photos in all. */
export async function waitForPhotosInClasses(page, n, { timeout = 60_000 } = {}) {
  // Polled from here: the page's Content-Security-Policy forbids evaluating text in it, which
  // a predicate built from this helper's source would need.
  const until = Date.now() + timeout;
  let count;
  // While the page navigates, there is nothing to count yet.
  while ((count = await photosInClasses(page).catch(() => undefined)) !== n) {
    if (Date.now() > until) throw new Error(`the class rows count ${count} photos, not ${n}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function countPhotosInClasses() {
  return [...document.querySelectorAll('[data-testid="class-count"]')].reduce((n, e) => n + (Number.parseInt(e.textContent, 10) || 0), 0);
}

/** Runs `action(db, arg)` on the page's IndexedDB store in the page and returns its result.
 * The page's Content-Security-Policy forbids compiling text in it (`new Function`), so the
 * whole call is handed over as one expression, as the DevTools console does. */
export function inStore(page, action, arg) {
  return page.evaluate(`(${openStoreAndRun})(${action}, ${JSON.stringify(arg ?? null)})`);
}

function openStoreAndRun(action, arg) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("afinar-training");
    open.onerror = () => reject(open.error);
    open.onsuccess = async () => {
      try {
        resolve(await action(open.result, arg));
      } catch (e) {
        reject(e);
      } finally {
        open.result.close();
      }
    };
  });
}

export const storedPhotos = (page) =>
  inStore(page, (db) => new Promise((resolve) => {
    const r = db.transaction("photos").objectStore("photos").count();
    r.onsuccess = () => resolve(r.result);
  }));
export const storedClasses = (page) =>
  inStore(page, (db) => new Promise((resolve) => {
    const r = db.transaction("meta").objectStore("meta").get("classes");
    r.onsuccess = () => resolve(r.result);
  }));

/** Waits until every result card has its answer (label or error). */
export async function waitForResults(page, count) {
  await page.waitForFunction(
    (n) => {
      const cards = document.querySelectorAll('[data-testid="result"]');
      return cards.length === n && [...cards].every((c) => !c.classList.contains("waiting"));
    },
    count,
    { timeout: 300_000 },
  );
}

/** The top label (or the error) of the card for `name`. */
export async function resultFor(page, name) {
  const card = page.locator(`[data-testid="result"][data-name="${name}"]`);
  if (await card.getByTestId("error").count()) {
    return { error: await card.getByTestId("error").innerText() };
  }
  return {
    label: await card.getByTestId("top-label").innerText(),
    prob: Number(await card.getByTestId("top-prob").getAttribute("data-prob")),
  };
}

/** A flower photo from shared/ as a Playwright file payload. */
export function photo(relative) {
  const file = path.join(shared, "data/flower_photos", relative);
  return { name: path.basename(file), mimeType: "image/jpeg", buffer: readFileSync(file) };
}

// zlib.crc32 needs Node 20.15; Debian's Node 18 must work too.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A 224×224 raw `.rgb` fixture from shared/models/testdata, encoded as a PNG. */
export function rgbFixtureAsPng(name) {
  const rgb = readFileSync(path.join(shared, "models/testdata", `${name}.rgb`));
  const size = 224;
  const rows = Buffer.alloc(size * (size * 3 + 1));
  for (let y = 0; y < size; y++) {
    rows[y * (size * 3 + 1)] = 0; // filter: none
    rgb.copy(rows, y * (size * 3 + 1) + 1, y * size * 3, (y + 1) * size * 3);
  }
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, "ascii");
    data.copy(out, 8);
    out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
  return { name: `${name}.png`, mimeType: "image/png", buffer: png };
}

/** A request for the training worker's files (Burn), fetched only when training or WebGPU needs it. */
export const isTrainingWorker = (url) => /\/afinar-worker(_bg\.wasm|\.js|_loader\.js)/.test(url);
