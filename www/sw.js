// Afinar's service worker: keeps the app's files so the page opens offline after a first visit.
// Network first (a new build is picked up at once), the cached copy when offline. The model is
// not handled here: the model worker keeps it in its own Cache Storage bucket.
// Named after the build by scripts/post-build.mjs: a new build caches its files apart, and
// activating it deletes the caches of the builds before.
const APP_CACHE = "afinar-app-dev";
// The inference worker's files have fixed names; the page's files are named in index.html. The
// training worker (Burn) is not kept at install: a person who only classifies never downloads
// it. It is kept (below) once the page has fetched it.
const WORKER_FILES = ["./afinar-inference-worker_loader.js", "./afinar-inference-worker.js", "./afinar-inference-worker_bg.wasm"];

// Caches the whole app at install, so it opens offline right after the first visit.
async function cacheApp() {
  const cache = await caches.open(APP_CACHE);
  const page = await fetch("./index.html", { cache: "reload" });
  const html = await page.clone().text();
  const linked = [...html.matchAll(/(?:href|src|from)\s*=?\s*["'](\.\/[^"']+)["']/g)].map((m) => m[1]);
  const imported = [...html.matchAll(/import[^'"]*['"](\.\/[^'"]+)['"]/g)].map((m) => m[1]);
  await cache.put("./index.html", page.clone());
  await cache.put("./", page);
  // Past the HTTP cache: a file it kept from another build must not be stored as this one's.
  const files = [...new Set([...linked, ...imported, ...WORKER_FILES, "./sw.js"])];
  await cache.addAll(files.map((file) => new Request(file, { cache: "reload" })));
}

self.addEventListener("install", (event) => {
  event.waitUntil(cacheApp().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("afinar-app-") && k !== APP_CACHE).map((k) => caches.delete(k))))
      // The page's request starts while this worker is still starting, instead of after.
      .then(() => self.registration.navigationPreload?.enable())
      .then(() => self.clients.claim()),
  );
});

// Files named after their content (Trunk's hashed names): a build's copy never changes, so a
// visit does not write one the cache already holds. Every other file (the page, the workers'
// fixed names) is written on every fetch, so that a copy from another build heals.
const HASHED = /-[0-9a-f]{12,16}(_bg)?\.[a-z]+$/;

async function keep(request, response) {
  const cache = await caches.open(APP_CACHE);
  if (HASHED.test(new URL(request.url).pathname) && (await cache.match(request))) {
    await response.body?.cancel();
    return;
  }
  await cache.put(request, response);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin || url.pathname.includes("/models/")) {
    return;
  }
  event.respondWith(
    (async () => (request.mode === "navigate" && (await event.preloadResponse)) || fetch(request))()
      .then((response) => {
        if (response.ok) event.waitUntil(keep(request, response.clone()));
        return response;
      })
      .catch(() =>
        caches.match(request).then((hit) => hit || (request.mode === "navigate" ? caches.match("./index.html") : Response.error())),
      ),
  );
});
