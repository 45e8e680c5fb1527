// The published app's service worker: every file of the app is kept at the first visit, so the
// app works offline afterwards. Its cache is named after its scope (several apps can share an
// origin, each in its own folder) and after the app's files, so a new publication replaces the
// old one and nothing else.
const PREFIX = "afinar-published:" + self.registration.scope + ":";
const CACHE = PREFIX + "{{cache}}";
const FILES = {{files}};

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then(async (cache) => {
      // Past the HTTP cache, so a host's cached copy of an older publication is not kept.
      await cache.addAll(FILES.map((file) => new Request(file, { cache: "reload" })));
      // The folder's own address: some hosts serve no index for it.
      await cache.add(new Request("./", { cache: "reload" })).catch(() => {});
      await self.skipWaiting();
    }),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith(PREFIX) && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  event.respondWith(
    caches
      .open(CACHE)
      .then((cache) => cache.match(event.request, { ignoreSearch: true }))
      .then((kept) => kept || fetch(event.request)),
  );
});
