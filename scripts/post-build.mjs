// Trunk's post-build hook (Trunk.toml): names the build and ties its files together, in the
// staging folder, before Trunk moves it to dist/.
// - The build's name: a hash of index.html (which names the page's hashed files) and the
//   worker's files (whose names are fixed).
// - index.html: the name in <meta name="afinar-build"> (the page passes it to its worker) and a
//   Content-Security-Policy that allows what the app needs and nothing else: its own files,
//   compiling wasm, its inline start-up script (by hash), blob: images and camera frames.
// - The worker's loader: it refuses a page of another build (it posts "WrongBuild", the page
//   asks for a reload) instead of loading files the page cannot talk to.
// - sw.js: its cache is named after the build; activating a new build deletes the old caches.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const dir = process.env.TRUNK_STAGING_DIR;
if (!dir) throw new Error("post-build.mjs runs as Trunk's post_build hook (TRUNK_STAGING_DIR is not set)");
const file = (name) => path.join(dir, name);
// The inference worker (the page's) and the training worker (started by the inference worker).
const WORKER_LOADERS = ["afinar-inference-worker_loader.js", "afinar-worker_loader.js"];
const WORKER_FILES = WORKER_LOADERS.flatMap((loader) => {
  const name = loader.replace("_loader.js", "");
  return [loader, `${name}.js`, `${name}_bg.wasm`];
});
const BUILD_PLACEHOLDER = "afinar-app-dev";

let index = readFileSync(file("index.html"), "utf8");
const name = createHash("sha256");
name.update(index);
for (const f of WORKER_FILES) name.update(readFileSync(file(f)));
const build = name.digest("hex").slice(0, 16);

const inlineScripts = [...index.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)].map(
  (m) => `'sha256-${createHash("sha256").update(m[1]).digest("base64")}'`,
);
const policy = [
  "default-src 'self'",
  `script-src 'self' 'wasm-unsafe-eval' ${inlineScripts.join(" ")}`,
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "media-src 'self' blob: mediastream:",
  "connect-src 'self'",
  "worker-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join("; ");
const head = `<meta charset="utf-8" />`;
if (!index.includes(head)) throw new Error(`index.html has no ${head}`);
index = index.replace(
  head,
  `${head}\n    <meta http-equiv="Content-Security-Policy" content="${policy}" />\n    <meta name="afinar-build" content="${build}" />`,
);
writeFileSync(file("index.html"), index);

for (const name of WORKER_LOADERS) {
  const loader = readFileSync(file(name), "utf8");
  writeFileSync(
    file(name),
    `// The page names its build after '#' (scripts/post-build.mjs).\n` +
      `if (self.location.hash && self.location.hash.slice(1) !== "${build}") {\n` +
      `  self.postMessage("WrongBuild");\n  self.close();\n} else {\n${loader}\n}\n`,
  );
}

const sw = readFileSync(file("sw.js"), "utf8");
if (!sw.includes(BUILD_PLACEHOLDER)) throw new Error(`sw.js has no ${BUILD_PLACEHOLDER}`);
writeFileSync(file("sw.js"), sw.replaceAll(BUILD_PLACEHOLDER, `afinar-app-${build}`));
console.log(`post-build: build ${build}; ${inlineScripts.length} inline script(s) allowed by hash`);
