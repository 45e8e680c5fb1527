// End-to-end: the built dist/ served as plain files, driven in headless Chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { readFileSync } from "node:fs";
import {
  serveDist, launch, openApp, waitForModel, waitForResults, resultFor, photo, rgbFixtureAsPng, shared, isTrainingWorker,
} from "./support.mjs";

// Known photos and the label the reference float32 model gives them (> 0.9 sure).
const KNOWN = [
  [rgbFixtureAsPng("bird"), "chickadee"],
  [photo("daisy/100080576_f52e8ee070_n.jpg"), "daisy"],
  [photo("daisy/11023272144_fce94401f2_m.jpg"), "daisy"],
  [photo("sunflowers/1022552002_2b93faf9e7_n.jpg"), "daisy"],
];
const NOT_AN_IMAGE = { name: "notes.jpg", mimeType: "image/jpeg", buffer: Buffer.from("shopping list: eggs, milk\n") };

let server;
before(async () => {
  server = await serveDist();
});
after(async () => {
  await server?.close();
});

function assertSameOrigin(seen, origin) {
  const foreign = seen.requests.filter((u) => !u.startsWith(origin) && !u.startsWith("blob:") && !u.startsWith("data:"));
  assert.deepEqual(foreign, [], "requests that left the page's origin");
}


test("a software WebGPU adapter is passed over for the CPU; WebGPU chosen by the user is remembered, gives known labels and an error card for a broken file, the page stays responsive, the user can switch back", async () => {
  // Headless Chromium's WebGPU here is SwiftShader, a software adapter.
  const browser = await launch({ webgpu: true });
  try {
    const context = await browser.newContext();
    const { page, seen } = await openApp(context, server.origin);
    await waitForModel(page);
    await page.getByTestId("backend").filter({ hasText: "CPU" }).waitFor({ timeout: 60_000 });
    await page.getByTestId("notice").filter({ hasText: "software renderer" }).waitFor({ timeout: 10_000 });

    // The user asks for WebGPU anyway; the choice holds across a reload.
    await page.getByTestId("backend-select").selectOption("webgpu");
    await page.getByTestId("backend").filter({ hasText: "WebGPU" }).waitFor({ timeout: 120_000 });
    assert.equal(await page.getByTestId("notice").count(), 0, "the fallback notice is gone once WebGPU runs");
    await page.reload();
    await waitForModel(page);
    await page.getByTestId("backend").filter({ hasText: "WebGPU" }).waitFor({ timeout: 120_000 });
    assert.equal(await page.getByTestId("notice").count(), 0, "no fallback notice for the user's choice");

    await page.evaluate(() => (window.__longTasks = []));
    // The text file sits in the middle: the photos after it must still be classified.
    const files = [KNOWN[0][0], KNOWN[1][0], NOT_AN_IMAGE, KNOWN[2][0], KNOWN[3][0]];
    await page.getByTestId("photo-input").setInputFiles(files);
    await waitForResults(page, files.length);

    for (const [file, label] of KNOWN) {
      const result = await resultFor(page, file.name);
      assert.equal(result.label, label, `${file.name}: ${JSON.stringify(result)}`);
      assert.ok(result.prob > 0.5, `${file.name}: ${result.prob}`);
    }
    const broken = await resultFor(page, NOT_AN_IMAGE.name);
    assert.match(broken.error ?? "", /can't be read|not an image/i);

    const longTasks = await page.evaluate(() => window.__longTasks);
    const worst = Math.max(0, ...longTasks);
    console.log(`WebGPU: longest main-thread task while classifying ${worst.toFixed(0)} ms`);
    assert.ok(worst <= 200, `the UI thread was blocked for ${worst} ms`);

    const timings = await page.getByTestId("timing").allInnerTexts();
    console.log("WebGPU timings:", timings.join(" | "));
    assert.ok(timings.every((t) => t.startsWith("WebGPU")), timings.join(" | "));

    // The gallery shows every photo with its top-1 label.
    await page.getByTestId("gallery-button").click();
    assert.equal(await page.locator(".photos.gallery [data-testid=top-label]").count(), KNOWN.length);

    // The user switches to the CPU; the next photo runs there.
    await page.getByRole("button", { name: "Details" }).click();
    await page.getByTestId("backend-select").selectOption("cpu");
    await page.getByTestId("backend").filter({ hasText: "CPU" }).waitFor({ timeout: 60_000 });
    await page.getByTestId("photo-input").setInputFiles([{ ...KNOWN[0][0], name: "bird-on-cpu.png" }]);
    await waitForResults(page, files.length + 1);
    assert.equal((await resultFor(page, "bird-on-cpu.png")).label, "chickadee");
    const card = page.locator('[data-testid="result"][data-name="bird-on-cpu.png"]');
    assert.match(await card.getByTestId("timing").innerText(), /^CPU/);

    assertSameOrigin(seen, server.origin);
    assert.deepEqual(seen.errors.filter((e) => /panic|RuntimeError/.test(e)), []);
  } finally {
    await browser.close();
  }
});

test("without WebGPU the CPU is used; dropped, pasted and camera photos are classified", async () => {
  // A browser that offers no WebGPU adapter: the app falls back to the CPU and says so.
  const browser = await launch({ webgpu: false });
  try {
    const context = await browser.newContext();
    const { page, seen } = await openApp(context, server.origin);
    await waitForModel(page);
    await page.getByTestId("backend").filter({ hasText: "CPU" }).waitFor({ timeout: 60_000 });
    await page.evaluate(() => (window.__longTasks = []));
    await page.getByTestId("photo-input").setInputFiles([KNOWN[0][0], KNOWN[1][0]]);
    await waitForResults(page, 2);
    assert.equal((await resultFor(page, KNOWN[0][0].name)).label, "chickadee");
    assert.equal((await resultFor(page, KNOWN[1][0].name)).label, "daisy");
    // Photos dropped on the page and pasted from the clipboard are classified too.
    for (const [kind, file] of [["drop", KNOWN[2][0]], ["paste", KNOWN[3][0]]]) {
      await page.evaluate(
        ({ kind, name, type, bytes }) => {
          const data = new DataTransfer();
          data.items.add(new File([new Uint8Array(bytes)], name, { type }));
          const event = kind === "drop"
            ? new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true })
            : new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true });
          document.body.dispatchEvent(event);
        },
        { kind, name: file.name, type: file.mimeType, bytes: [...file.buffer] },
      );
    }
    await waitForResults(page, 4);
    assert.equal((await resultFor(page, KNOWN[2][0].name)).label, "daisy");
    assert.equal((await resultFor(page, KNOWN[3][0].name)).label, "daisy");

    // The camera (Chromium's synthetic one): a captured frame becomes a classified photo.
    await page.getByTestId("camera-button").click();
    await page.waitForFunction(() => document.querySelector(".camera video")?.videoWidth > 0, null, { timeout: 30_000 });
    await page.getByRole("button", { name: "Capture" }).click();
    await waitForResults(page, 5);
    const shot = page.locator('[data-testid="result"][data-name^="camera"]');
    assert.equal(await shot.getByTestId("top-label").count(), 1, "the camera photo got a label");
    // The live preview classifies frame after frame and says how fast.
    await page.getByTestId("live-fps").filter({ hasText: /frames per second/ }).waitFor({ timeout: 30_000 });
    const fps = Number.parseFloat(await page.getByTestId("live-fps").innerText());
    console.log(`live camera: ${fps} frames per second`);
    assert.ok(fps > 0, `${fps} fps`);
    assert.equal(await page.getByTestId("live-label").count(), 5);
    // Classifying fetched only the small inference worker, never the training worker (Burn).
    assert.ok(seen.requests.some((u) => u.endsWith("/afinar-inference-worker_bg.wasm")));
    assert.deepEqual(seen.requests.filter(isTrainingWorker), [], "classifying fetched the training worker");
    // Hold to record: frames join the chosen class while the button is held.
    await page.getByTestId("record-class").selectOption({ label: "tulips" });
    await page.getByTestId("record-button").dispatchEvent("pointerdown");
    await page.waitForTimeout(1200);
    await page.getByTestId("record-button").dispatchEvent("pointerup");
    const recorded = Number.parseInt(await page.getByTestId("recorded").innerText(), 10);
    assert.ok(recorded >= 3, `${recorded} frames recorded in 1.2 s`);
    const tulips = page.locator('[data-testid="class-row"][data-class="tulips"] [data-testid="class-count"]');
    await tulips.filter({ hasText: new RegExp(`^${recorded} photos`) }).waitFor({ timeout: 30_000 });
    await page.waitForTimeout(600);
    assert.equal(Number.parseInt(await page.getByTestId("recorded").innerText(), 10), recorded, "recording stopped on release");
    // Training photos are prepared by the inference worker too: still no training worker
    // (training fetches it: training.test.mjs).
    assert.deepEqual(seen.requests.filter(isTrainingWorker), [], "recording training photos fetched the training worker");
    // A hidden tab stops the camera with a message.
    await page.evaluate(() => {
      Object.defineProperty(document, "hidden", { value: true, configurable: true });
      document.dispatchEvent(new Event("visibilitychange", { bubbles: true }));
    });
    await page.getByTestId("camera-message").filter({ hasText: "tab was hidden" }).waitFor({ timeout: 10_000 });
    assert.equal(await page.locator(".camera video").count(), 0);
    await page.evaluate(() => delete document.hidden);
    const timings = await page.getByTestId("timing").allInnerTexts();
    console.log("CPU timings:", timings.join(" | "));
    assert.ok(timings.every((t) => t.startsWith("CPU")), timings.join(" | "));
    const worst = Math.max(0, ...(await page.evaluate(() => window.__longTasks)));
    console.log(`CPU: longest main-thread task while classifying ${worst.toFixed(0)} ms`);
    assert.ok(worst <= 200, `the UI thread was blocked for ${worst} ms`);
    assertSameOrigin(seen, server.origin);
  } finally {
    await browser.close();
  }
});

test("at phone width nothing overflows, every control has a name, and the keyboard reaches them", async () => {
  const browser = await launch({ webgpu: false });
  try {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const { page } = await openApp(context, server.origin);
    await waitForModel(page);
    await page.getByTestId("photo-input").setInputFiles([KNOWN[1][0]]);
    await waitForResults(page, 1);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the phone's screen`);
    // A screen reader names every control: its own label, a <label> around or for it, or text.
    const unnamed = await page.evaluate(() => {
      const name = (el) => [
        el.getAttribute("aria-label"), el.getAttribute("title"),
        ...[...(el.labels ?? [])].map((l) => l.textContent), el.textContent,
      ].filter(Boolean).join(" ").trim();
      return [...document.querySelectorAll("button, input, select, textarea, [role=button], a[href]")]
        .filter((el) => !name(el))
        .map((el) => el.outerHTML.slice(0, 160));
    });
    assert.deepEqual(unnamed, [], "controls without an accessible name");
    // Tab goes through the page's controls in order, the photo picker and training's included.
    const reached = new Set();
    for (let i = 0; i < 80; i++) {
      await page.keyboard.press("Tab");
      reached.add(await page.evaluate(() => document.activeElement?.dataset?.testid ?? document.activeElement?.tagName));
    }
    for (const id of ["backend-select", "photo-input", "camera-button", "gallery-button", "dataset-folder-input"]) {
      assert.ok(reached.has(id), `Tab never reaches ${id}: ${[...reached]}`);
    }
  } finally {
    await browser.close();
  }
});

test("the model is cached, the app works offline, and a wrong model file is refused", async () => {
  const browser = await launch({ webgpu: true });
  try {
    const context = await browser.newContext();
    const modelPath = "/models/mobilenet_v2_1.0_224_quant.tflite";
    const before = server.requests.filter((p) => p === modelPath).length;
    let start = Date.now();
    const { page, seen } = await openApp(context, server.origin);
    await waitForModel(page);
    console.log(`cold load (download, worker start, warm-up) to model ready: ${Date.now() - start} ms`);
    await page.evaluate(() => navigator.serviceWorker.ready);
    // The model is kept in the background once it loaded: the worker marks when it is.
    const worker = page.workers().find((w) => w.url().includes("afinar-inference-worker"));
    assert.ok(worker, "the inference worker runs");
    for (let i = 0; !(await worker.evaluate(() => performance.getEntriesByName("afinar:model-kept").length)); i++) {
      assert.ok(i < 600, "the model was not kept within a minute");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(server.requests.filter((p) => p === modelPath).length, before + 1, "first visit downloads the model");
    // The worker index.html starts reads the model at once; the page's own request for it,
    // later, is answered by that read instead of a second one.
    const marks = await worker.evaluate(() => ["afinar:model-requested", "afinar:model-already-read"].map((m) => performance.getEntriesByName(m).length));
    assert.deepEqual(marks, [1, 1], "one read of the model, begun before the page asked");

    // Next visit, offline: the service worker serves the app, Cache Storage the model.
    await context.setOffline(true);
    start = Date.now();
    await page.reload();
    await waitForModel(page);
    console.log(`warm load (offline, everything from the caches) to model ready: ${Date.now() - start} ms`);
    assert.match(await page.getByTestId("model-ready").innerText(), /cache/);
    // On the CPU the page runs the quantized file in its own integers, and says so.
    assert.match(await page.getByTestId("model-ready").getAttribute("title"), /runs in the file's 8-bit integers/);
    assert.equal(server.requests.filter((p) => p === modelPath).length, before + 1, "the model was downloaded again");
    await page.getByTestId("photo-input").setInputFiles([KNOWN[1][0]]);
    await waitForResults(page, 1);
    assert.equal((await resultFor(page, KNOWN[1][0].name)).label, "daisy");
    // WebGPU runs in the training worker, which this visit never needed, so it is not kept:
    // offline, asking for WebGPU says why it cannot be had and the CPU stays.
    await page.getByTestId("backend-select").selectOption("webgpu");
    await page.getByTestId("notice").filter({ hasText: "training part of Afinar" }).waitFor({ timeout: 60_000 });
    await page.getByTestId("backend").filter({ hasText: "CPU" }).waitFor();
    await page.getByTestId("backend-select").selectOption("cpu");
    await context.setOffline(false);

    // A file that is not a model is refused and the current model stays.
    const ready = await page.getByTestId("model-ready").innerText();
    await page.getByTestId("model-input").setInputFiles({
      name: "not-a-model.tflite", mimeType: "application/octet-stream", buffer: Buffer.from("definitely not a flatbuffer"),
    });
    await page.getByTestId("notice").filter({ hasText: "not loaded" }).waitFor({ timeout: 60_000 });
    assert.equal(await page.getByTestId("model-ready").innerText(), ready);

    // Another MobileNetV2 1.0/224 file (int8, TF2 post-training quantization) is accepted.
    const other = path.join(shared, "models/tf2_mobilenet_v2_1.0_224_ptq.tflite");
    await page.getByTestId("model-input").setInputFiles({
      name: "tf2_ptq.tflite", mimeType: "application/octet-stream", buffer: readFileSync(other),
    });
    await page.getByTestId("model-ready").filter({ hasText: "tf2_ptq.tflite" }).waitFor({ timeout: 120_000 });
    await page.getByTestId("photo-input").setInputFiles([KNOWN[0][0]]);
    await waitForResults(page, 2);
    assert.equal((await resultFor(page, KNOWN[0][0].name)).label, "chickadee");
    assertSameOrigin(seen, server.origin);
  } finally {
    await browser.close();
  }
});

test("if the model worker stops, a new one takes over and the unanswered photos are classified", async () => {
  const browser = await launch({ webgpu: false });
  try {
    const context = await browser.newContext();
    const { page } = await openApp(context, server.origin);
    await waitForModel(page);
    const files = KNOWN.map(([file]) => file);
    await page.getByTestId("photo-input").setInputFiles(files);
    // Once the first answer is in, the worker is busy with the rest: make it fail there.
    await page.locator('[data-testid="result"]:not(.waiting)').first().waitFor({ timeout: 60_000 });
    const worker = page.workers().find((w) => w.url().includes("afinar-inference-worker"));
    assert.ok(worker, "the model worker is running");
    await worker.evaluate(() => setTimeout(() => {
      throw new Error("simulated worker failure");
    }, 0));
    await page.getByTestId("notice").filter({ hasText: "restarted" }).waitFor({ timeout: 60_000 });
    await waitForResults(page, files.length);
    const results = await Promise.all(files.map((f) => resultFor(page, f.name)));
    const failed = results.filter((r) => r.error);
    assert.ok(failed.length <= 1, JSON.stringify(results));
    assert.ok(failed.every((r) => /stopped/.test(r.error)), JSON.stringify(results));
    assert.ok(results.filter((r) => r.label).length >= files.length - 1, JSON.stringify(results));
    await page.getByTestId("backend").filter({ hasText: "CPU" }).waitFor();
    await waitForModel(page);
    // The new worker keeps working.
    await page.getByTestId("photo-input").setInputFiles([{ ...KNOWN[1][0], name: "again.jpg" }]);
    await waitForResults(page, files.length + 1);
    assert.equal((await resultFor(page, "again.jpg")).label, "daisy");

    // With a model file the user picked: the new worker gets that file before the photos that
    // are sent again (it is read anew first), so none of them fails for want of a model.
    const other = path.join(shared, "models/tf2_mobilenet_v2_1.0_224_ptq.tflite");
    await page.getByTestId("model-input").setInputFiles({
      name: "tf2_ptq.tflite", mimeType: "application/octet-stream", buffer: readFileSync(other),
    });
    await page.getByTestId("model-ready").filter({ hasText: "tf2_ptq.tflite" }).waitFor({ timeout: 120_000 });
    const more = KNOWN.map(([file], i) => ({ ...file, name: `more-${i}.jpg` }));
    await page.getByTestId("photo-input").setInputFiles(more);
    await page.locator('[data-testid="result"][data-name="more-0.jpg"]:not(.waiting)').waitFor({ timeout: 60_000 });
    const next = page.workers().find((w) => w.url().includes("afinar-inference-worker"));
    await next.evaluate(() => setTimeout(() => {
      throw new Error("simulated worker failure");
    }, 0));
    await waitForResults(page, files.length + 1 + more.length);
    const after = await Promise.all(more.map((f) => resultFor(page, f.name)));
    assert.ok(after.filter((r) => r.error).every((r) => /stopped/.test(r.error)), JSON.stringify(after));
    assert.ok(after.filter((r) => r.label).length >= more.length - 1, JSON.stringify(after));
    await page.getByTestId("model-ready").filter({ hasText: "tf2_ptq.tflite" }).waitFor({ timeout: 120_000 });
  } finally {
    await browser.close();
  }
});

test("the page runs under its Content-Security-Policy, and a page and worker of two builds say so instead of hanging", async () => {
  const browser = await launch({ webgpu: false });
  try {
    // Under the policy: the app works with no violation reported, and a script injected into
    // the page does not run.
    const context = await browser.newContext();
    const { page, seen } = await openApp(context, server.origin);
    await waitForModel(page);
    const policy = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute("content");
    assert.match(policy, /script-src 'self' 'wasm-unsafe-eval' 'sha256-/);
    const build = await page.locator('meta[name="afinar-build"]').getAttribute("content");
    assert.match(build, /^[0-9a-f]{16}$/);
    await page.getByTestId("photo-input").setInputFiles([KNOWN[1][0]]);
    await waitForResults(page, 1);
    assert.deepEqual(seen.errors.filter((e) => !/favicon/.test(e)), [], "no violation of the policy by the app");
    const injected = await page.evaluate(() => {
      const script = document.createElement("script");
      script.textContent = "window.__injected = true;";
      document.head.append(script);
      return window.__injected === true;
    });
    assert.equal(injected, false, "an injected inline script ran");
    // The service worker's cache is named after the build.
    await page.waitForFunction((b) => caches.has(`afinar-app-${b}`), build, { timeout: 60_000 });

    // A page of another build (as when an update lands between the page and its worker): the
    // worker's loader refuses it, the page says so and offers a reload.
    const other = await browser.newContext();
    await other.route((url) => url.pathname === "/" || url.pathname.endsWith("/index.html"), async (route) => {
      const response = await route.fetch();
      const body = (await response.text()).replace(/(name="afinar-build" content=")[0-9a-f]+/, "$10000000000000000");
      await route.fulfill({ response, body });
    });
    const { page: mixed } = await openApp(other, server.origin);
    const error = mixed.getByTestId("model-error");
    await error.waitFor({ timeout: 60_000 });
    assert.match(await error.innerText(), /two versions of Afinar/);
    assert.equal(await mixed.getByTestId("reload").count(), 1);
  } finally {
    await browser.close();
  }
});

test("a model kept in the browser that no longer matches its sha256 is downloaded again, not read", async () => {
  const browser = await launch({ webgpu: false });
  try {
    const context = await browser.newContext();
    const { page, seen } = await openApp(context, server.origin);
    await waitForModel(page);
    const model = (u) => u.includes("/models/") && u.endsWith(".tflite");
    // The sha256 recorded with the kept model: undefined while none is kept, null for none.
    const recorded = () => page.evaluate(async () => {
      const cache = await caches.open("afinar-models-v1");
      const [request] = await cache.keys();
      return request && (await cache.match(request)).headers.get("x-afinar-sha256");
    });
    // Writes the kept model again: with one byte changed, or without its recorded sha256.
    const rewriteKept = (change) => page.evaluate(async (change) => {
      const cache = await caches.open("afinar-models-v1");
      const [request] = await cache.keys();
      const response = await cache.match(request);
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (change === "flip a byte") bytes[bytes.length >> 1] ^= 0xff;
      const headers = change === "drop the sha256" ? {} : response.headers;
      await cache.put(request, new Response(bytes, { headers }));
    }, change);
    for (let i = 0; (await recorded()) === undefined; i++) {
      assert.ok(i < 60, "the model was kept");
      await page.waitForTimeout(500);
    }
    // One byte changed on the disk, the recorded sha256 kept.
    await rewriteKept("flip a byte");
    const downloads = seen.requests.filter(model).length;
    await page.reload();
    await waitForModel(page);
    assert.equal(seen.requests.filter(model).length, downloads + 1, "the damaged copy was replaced by a download");
    await page.getByTestId("photo-input").setInputFiles([KNOWN[1][0]]);
    await waitForResults(page, 1);
    assert.equal((await resultFor(page, KNOWN[1][0].name)).label, "daisy");
    // The next visit reads the good copy from the cache again.
    await page.reload();
    await waitForModel(page);
    assert.equal(seen.requests.filter(model).length, downloads + 1);

    // A copy kept by a build before the sha256 was recorded is read (offline it is all there
    // is), and kept again with its sha256.
    assert.match(await recorded(), /^[0-9a-f]{64}$/);
    await rewriteKept("drop the sha256");
    assert.equal(await recorded(), null);
    await page.reload();
    await waitForModel(page);
    assert.equal(seen.requests.filter(model).length, downloads + 1, "an older build's copy is read, not downloaded");
    for (let i = 0; (await recorded()) === null; i++) {
      assert.ok(i < 60, "the copy was kept again with its sha256");
      await page.waitForTimeout(500);
    }
  } finally {
    await browser.close();
  }
});
