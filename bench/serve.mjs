// The static server and browser launch shared by the benchmark's browser scripts.
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const shared = process.env.AFINAR_SHARED ?? path.join(root, "../shared");
export const photoDir = path.join(shared, "data/flower_photos");

const types = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
  ".wasm": "application/wasm", ".css": "text/css", ".svg": "image/svg+xml",
  ".json": "application/json", ".jpg": "image/jpeg",
};

/** Plain static files on 127.0.0.1: dist/ (or `site`) at /, the anchors' npm packages, the
 * photos and (when given) a folder of features; every path asked for is recorded in `requests`.
 * Cacheable by default, so that a second visit shows the warm load (`cache: false` for the
 * tests, which check what the app itself caches). */
export async function serve({ features, cache = true, site = path.join(root, "dist") } = {}) {
  const requests = [];
  const mounts = [
    ["/node_modules/", path.join(root, "node_modules")],
    ["/photos/", photoDir],
    ["/features/", features],
    ["/", site],
  ];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    requests.push(url.pathname);
    const [prefix, dir] = mounts.find(([p, d]) => d && url.pathname.startsWith(p));
    let file = path.join(dir, decodeURIComponent(url.pathname.slice(prefix.length)));
    if (!file.startsWith(dir)) {
      res.writeHead(403).end();
      return;
    }
    try {
      if ((await stat(file)).isDirectory()) file = path.join(file, "index.html");
      const body = await readFile(file);
      res.writeHead(200, {
        "content-type": types[path.extname(file)] ?? "application/octet-stream",
        "content-length": body.length,
        "cache-control": cache ? "max-age=3600" : "no-cache",
      });
      res.end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return { origin, requests, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Debian's Chromium, headless; WebGPU on (a software adapter where there is no GPU) or off;
 * `extra` flags for an experiment. */
export function launch(webgpu, extra = []) {
  const args = ["--disable-background-networking", "--disable-component-update", "--no-first-run", ...extra];
  if (webgpu) args.push("--enable-unsafe-webgpu");
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args });
}

/** The median of `xs` (the mean of the two middle values for an even count). */
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Opens the bench page (dist/bench/) and waits for its engines' interface. */
export async function openBenchPage(browser, origin, errors = []) {
  const page = await browser.newPage();
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(origin + "/bench/");
  await page.waitForFunction(() => window.benchReady === true);
  return page;
}
