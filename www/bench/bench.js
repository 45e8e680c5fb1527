// The benchmark page's engines, each behind the same small interface so that the driver
// (bench/browser.mjs) can interleave them: `load()` → first-use cost, `classify(photo)` → one
// timed prediction. Photos are fetched once and decoded to the same 224×224 centre crop for the
// anchors; Afinar's worker gets the JPEG file, as in the app, and reports its model time apart.

const MODEL_URL = new URL("../models/mobilenet_v2_1.0_224_quant.tflite", location.href).href;
const log = (line) => (document.getElementById("log").textContent += line + "\n");

/** A photo's bytes and its 224×224 centre crop (RGBA ImageData and packed RGB). */
async function loadPhoto(url) {
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const bitmap = await createImageBitmap(new Blob([bytes]));
  const side = Math.min(bitmap.width, bitmap.height);
  const canvas = new OffscreenCanvas(224, 224);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, 224, 224);
  const imageData = ctx.getImageData(0, 0, 224, 224);
  const rgb = new Uint8Array(224 * 224 * 3);
  for (let i = 0, j = 0; i < imageData.data.length; i += 4, j += 3) {
    rgb[j] = imageData.data[i];
    rgb[j + 1] = imageData.data[i + 1];
    rgb[j + 2] = imageData.data[i + 2];
  }
  return { url, bytes, imageData, rgb };
}

/** Macro F1 of a training outcome (the mean of its classes' F1). */
const macroF1 = (o) => (o.f1?.length ? o.f1.reduce((a, b) => a + b, 0) / o.f1.length : null);

const photos = new Map();
/** Training photos' bytes fetched ahead of a timed run (`prepareTime`), by URL. */
const fileBytes = new Map();
async function photo(url) {
  if (!photos.has(url)) photos.set(url, await loadPhoto(url));
  return photos.get(url);
}

/** Afinar's model worker (the app's own, from dist/), spoken to in its message protocol. */
class AfinarEngine {
  /** `arithmetic` ("float") is put in the worker's URL, which asks it of the CPU path. */
  constructor(backend, arithmetic = null) {
    this.backend = backend; // "Cpu" or "WebGpu"
    this.query = arithmetic ? `?arithmetic=${arithmetic}` : "";
    this.pending = new Map();
    this.nextId = 1;
    this.waiters = [];
  }

  /** Resolves with the first reply that `accept` returns a value for. */
  next(accept) {
    return new Promise((resolve, reject) => this.waiters.push({ accept, resolve, reject }));
  }

  onReply(reply) {
    const failure = reply?.Crashed ? `worker crashed: ${reply.Crashed}`
      : reply?.BadRequest ? `worker could not read a request: ${reply.BadRequest}` : null;
    if (failure) {
      for (const w of this.waiters.splice(0)) w.reject(new Error(failure));
      return;
    }
    for (let i = 0; i < this.waiters.length; i++) {
      const value = this.waiters[i].accept(reply);
      if (value !== undefined) {
        this.waiters.splice(i, 1)[0].resolve(value);
        return;
      }
    }
  }

  async load() {
    const start = performance.now();
    this.worker = new Worker(`../afinar-inference-worker_loader.js${this.query}`);
    this.worker.onmessage = (e) => this.onReply(e.data);
    this.worker.onerror = (e) => this.onReply({ Crashed: e.message });
    await this.next((r) => (r === "Started" ? true : undefined));
    this.worker.postMessage({ UseBackend: this.backend });
    const backend = await this.next((r) => r.BackendReady);
    this.worker.postMessage({ LoadDefaultModel: { url: MODEL_URL } });
    const ready = await this.next((r) => r.ModelReady ?? (r.ModelFailed && { failed: r.ModelFailed }));
    if (ready.failed) throw new Error(ready.failed);
    return { ms: performance.now() - start, adapter: backend.adapter, backend: backend.backend,
      fallback: backend.fallback ?? null };
  }

  request(message, accept) {
    const reply = this.next(accept);
    this.worker.postMessage(message);
    return reply;
  }

  async classify(url) {
    const p = await photo(url);
    const id = this.nextId++;
    const start = performance.now();
    const reply = await this.request({ Classify: { id, bytes: p.bytes } },
      (r) => (r.Classified && r.Classified.id === id ? r.Classified.result : undefined));
    const wall = performance.now() - start;
    if (reply.Err) throw new Error(reply.Err);
    const c = reply.Ok;
    return { ms: c.model_ms, wall_ms: wall, decode_ms: c.decode_ms, top: c.top[0].index,
      label: c.top[0].label, memory: c.wasm_memory_bytes };
  }

  /** Prepares a training photo as the page does: the rows the protocol's `RowsNeeded` asks for
   * (features; boundary activations with `unfreeze`; `views` augmented views). */
  async embed(url, rows) {
    // Only the bytes, not kept: thousands of training photos' decoded crops would not fit.
    const bytes = photos.get(url)?.bytes ?? fileBytes.get(url) ?? new Uint8Array(await (await fetch(url)).arrayBuffer());
    const id = this.nextId++;
    const start = performance.now();
    const reply = await this.request({ Prepare: { id, bytes, rows } },
      (r) => (r.Prepared && r.Prepared.id === id ? r.Prepared.result : undefined));
    if (reply.Err) throw new Error(reply.Err);
    return { ms: performance.now() - start, embedding: reply.Ok };
  }

  /** Trains with the app's training run: `settings.val_fraction` of each class held out. */
  async train({ classes, labels, features, boundary, augmented, augmentedBoundary, validation,
    settings }) {
    const epochs = [];
    const losses = [];
    const start = performance.now();
    const outcome = await this.request(
      { Train: { classes, labels, features, boundary: boundary ?? null,
        augmented: augmented ?? null, augmented_boundary: augmentedBoundary ?? null,
        validation: validation ?? null,
        sha256: labels.map((_, i) => `row-${i}`), names: labels.map((_, i) => `photo-${i}.jpg`),
        settings } },
      (r) => {
        if (r.Epoch) {
          epochs.push(r.Epoch.elapsed_ms);
          losses.push(r.Epoch.train_loss);
          const e = r.Epoch;
          console.log(`epoch ${e.epoch}/${e.total_epochs}: val ${e.val_accuracy ?? "-"} (${(e.elapsed_ms / 1000).toFixed(0)} s)`);
        }
        return r.Trained;
      });
    if (outcome.Err) throw new Error(outcome.Err);
    const o = outcome.Ok.scores;
    return { wall_ms: performance.now() - start, train_ms: o.train_ms, val_accuracy: o.val_accuracy,
      frozen_val_accuracy: o.frozen_val_accuracy ?? null, epoch_elapsed_ms: epochs,
      train_losses: losses,
      kept_epoch: o.kept_epoch, macro_f1: macroF1(o), memory: o.wasm_memory_bytes,
      helper_memory: o.helper_memory_bytes ?? [],
      head_bytes: outcome.Ok.head_file.length };
  }

  /** Publishes the classifier in use (the last head trained) as a web app: its two forms'
   * sizes, in bytes. */
  async publish() {
    const start = performance.now();
    const reply = await this.request({ Publish: { not_sure_below: 0.7 } }, (r) => r.Published);
    if (reply.Err) throw new Error(reply.Err);
    return { ms: performance.now() - start, zip: reply.Ok.zip.length, single_file: reply.Ok.single_file.length };
  }

  close() {
    this.worker?.terminate();
  }
}

/** MediaPipe Tasks' image classifier, CPU delegate. */
class MediaPipeEngine {
  async load() {
    const start = performance.now();
    const { FilesetResolver, ImageClassifier } = await import(
      "/node_modules/@mediapipe/tasks-vision/vision_bundle.mjs");
    const fileset = await FilesetResolver.forVisionTasks("/node_modules/@mediapipe/tasks-vision/wasm");
    this.classifier = await ImageClassifier.createFromOptions(fileset, {
      baseOptions: { modelAssetPath: MODEL_URL, delegate: "CPU" },
      runningMode: "IMAGE",
      maxResults: 5,
    });
    return { ms: performance.now() - start };
  }

  async classify(url) {
    const p = await photo(url);
    const start = performance.now();
    const result = this.classifier.classify(p.imageData);
    const ms = performance.now() - start;
    const best = result.classifications[0].categories[0];
    return { ms, top: best.index, label: best.categoryName };
  }

  close() {
    this.classifier?.close();
  }
}

/** LiteRT.js on its CPU (XNNPACK, wasm) accelerator, single-threaded like the others. */
class LiteRtEngine {
  async load() {
    const start = performance.now();
    this.lib = await import("/node_modules/@litertjs/core/dist/index.js");
    if (!LiteRtEngine.runtime) {
      LiteRtEngine.runtime = this.lib.loadLiteRt("/node_modules/@litertjs/core/wasm/");
    }
    await LiteRtEngine.runtime;
    this.model = await this.lib.loadAndCompile(MODEL_URL, { accelerator: "wasm" });
    return { ms: performance.now() - start };
  }

  async classify(url) {
    const p = await photo(url);
    const start = performance.now();
    const input = new this.lib.Tensor(p.rgb, [1, 224, 224, 3]);
    const outputs = await this.model.run(input);
    const probs = outputs[0].toTypedArray();
    const ms = performance.now() - start;
    input.delete();
    for (const t of outputs) t.delete();
    let top = 0;
    for (let i = 1; i < probs.length; i++) if (probs[i] > probs[top]) top = i;
    return { ms, top };
  }

  close() {
    this.model?.delete();
  }
}

const engines = {
  "afinar-cpu": () => new AfinarEngine("Cpu"),
  // The same worker in float32 over the dequantized weights (the CPU path runs the model
  // file's own 8-bit integers unless float32 is asked for): the anchor of before.
  "afinar-cpu-float": () => new AfinarEngine("Cpu", "float"),
  "afinar-webgpu": () => new AfinarEngine("WebGpu"),
  mediapipe: () => new MediaPipeEngine(),
  litert: () => new LiteRtEngine(),
};
const live = new Map();

// The driver's interface (called through page.evaluate).
window.bench = {
  hasWebGpu: async () => !!(navigator.gpu && (await navigator.gpu.requestAdapter())),
  /** Starts an engine; returns its load time (to ready). */
  async load(name) {
    live.get(name)?.close();
    const engine = engines[name]();
    const info = await engine.load();
    live.set(name, engine);
    log(`${name}: loaded in ${info.ms.toFixed(0)} ms`);
    return info;
  },
  /** Classifies each photo once; returns one timing per photo. */
  async classify(name, urls) {
    const engine = live.get(name);
    const out = [];
    for (const url of urls) out.push(await engine.classify(url));
    return out;
  },
  /** Prepares training photos (labels[i] is urls[i]'s class) and keeps them for `train`: with
   * `views` augmented views (seeded by `seed`) of each photo that `validation` does not hold
   * out. With `workers` above 1, the worker prepares them on that many workers, photos sent
   * as the app sends them (several at a time); each photo's time is then its wait too. */
  async embed(name, urls, labels, unfreeze = null, { views = 0, seed = 0, validation = null, workers = 1 } = {}) {
    const engine = live.get(name);
    engine.worker.postMessage({ UseWorkers: workers });
    const ms = new Array(urls.length);
    const rows = new Array(urls.length);
    let next = 0, done = 0;
    const lane = async () => {
      while (next < urls.length) {
        const i = next++;
        const held = validation?.[i] ?? false;
        const { ms: t, embedding } = await engine.embed(urls[i], { unfreeze, views: held ? 0 : views, seed });
        ms[i] = t;
        rows[i] = embedding;
        if (++done % 250 === 0) console.log(`prepared ${done} of ${urls.length} photos`);
      }
    };
    await Promise.all(Array.from({ length: workers > 1 ? 2 * workers + 1 : 1 }, lane));
    engine.prepared = { rows, labels, views, validation };
    return ms;
  },
  /** SHA-256 (hex) of the rows `embed` kept, in order: the same photos prepared twice give the
   * same digest only if every value is the same. */
  async preparedDigest(name) {
    const bytes = new TextEncoder().encode(JSON.stringify(live.get(name).prepared.rows));
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
  },
  /** Seconds to prepare `urls` (bytes fetched beforehand) with `rows` on `workers` workers,
   * sent as the app sends them; the rows are not kept. A few photos first start the helpers. */
  async prepareTime(name, urls, rows, workers) {
    const engine = live.get(name);
    for (const url of urls) if (!fileBytes.has(url)) fileBytes.set(url, new Uint8Array(await (await fetch(url)).arrayBuffer()));
    engine.worker.postMessage({ UseWorkers: workers });
    const inFlight = Math.max(3, 2 * workers + 1);
    const run = async (list) => {
      let next = 0;
      const lane = async () => { while (next < list.length) await engine.embed(list[next++], rows); };
      await Promise.all(Array.from({ length: inFlight }, lane));
    };
    await run(urls.slice(0, inFlight));
    const start = performance.now();
    await run(urls);
    return (performance.now() - start) / 1000;
  },
  /** Trains on the photos `embed` prepared, or on features fetched from `featuresUrl` (f32)
   * with `labelsUrl` (u8). */
  async train(name, { classes, settings, featuresUrl, labelsUrl }) {
    const engine = live.get(name);
    const cat = (arrays) => {
      const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
      let at = 0;
      for (const a of arrays) (out.set(a, at), (at += a.length));
      return out;
    };
    let set;
    if (featuresUrl) {
      const get = async (u) => new Uint8Array(await (await fetch(u)).arrayBuffer());
      set = { features: await get(featuresUrl), labels: Array.from(await get(labelsUrl)) };
    } else {
      const { rows, labels, views, validation } = engine.prepared;
      const tune = settings.unfreeze != null && rows[0]?.boundary;
      // A held-out photo has no views: its view rows repeat its plain one (never read).
      const viewRows = (plain, augmented) =>
        augmented?.length ? augmented : cat(Array(views).fill(plain));
      set = { features: cat(rows.map((r) => r.features)), labels, validation,
        boundary: tune ? cat(rows.map((r) => r.boundary)) : null };
      if (views > 0 && settings.views === views) {
        set.augmented = cat(rows.map((r) => viewRows(r.features, r.augmented)));
        if (tune) set.augmentedBoundary = cat(rows.map((r) => viewRows(r.boundary, r.augmented_boundary)));
      }
    }
    return engine.train({ classes, settings, ...set });
  },
  publish(name) {
    return live.get(name).publish();
  },
  close(name) {
    live.get(name)?.close();
    live.delete(name);
  },
};
window.benchReady = true;
