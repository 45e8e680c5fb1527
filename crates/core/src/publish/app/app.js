// A classifier published with Afinar: the page of its two forms (a folder on any static host,
// or one .html file opened from the disk). It starts Afinar's inference worker, gives it the
// model and the trained head, and shows each photo's classes. Photos never leave the device.
(function () {
  "use strict";

  var app = document.getElementById("app");
  var statusLine = document.getElementById("status");
  var results = document.getElementById("results");
  var notSureBelow = Number(app.getAttribute("data-not-sure-below"));
  // Photos past this size are refused before they are read (the worker bounds the pixels).
  var MAX_PHOTO_BYTES = 64 * 1024 * 1024;

  // The single file's text form of bytes (publish/text.rs in Afinar's core): base 85 in these
  // digits, 5 for each 4 bytes; a last group of n bytes as n + 1 digits.
  var DIGITS = "!#$%()*+,-./0123456789:;=?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_abcdefghijklmnopqrstuvwxyz{|";
  function fromText(text) {
    var value = new Uint8Array(128);
    for (var d = 0; d < DIGITS.length; d++) value[DIGITS.charCodeAt(d)] = d;
    var rest = text.length % 5;
    var out = new Uint8Array(Math.floor(text.length / 5) * 4 + (rest ? rest - 1 : 0));
    var o = 0;
    for (var at = 0; at < text.length; at += 5) {
      var v = 0;
      for (var k = at; k < at + 5; k++) v = v * 85 + (k < text.length ? value[text.charCodeAt(k)] : 84);
      for (var shift = 24; shift >= 0 && o < out.length; shift -= 8) out[o++] = Math.floor(v / Math.pow(2, shift)) & 255;
    }
    return out;
  }

  // One of the app's parts: inlined in the single file (gzip in base 85), else the file beside
  // the page.
  function part(name) {
    var inlined = document.getElementById(name);
    if (inlined) {
      return Promise.resolve().then(function () {
        var gzipped = new Blob([fromText(inlined.textContent)]);
        return new Response(gzipped.stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer();
      });
    }
    return fetch(name).then(function (r) {
      if (!r.ok) throw new Error(name + ": " + r.status + " " + r.statusText);
      return r.arrayBuffer();
    });
  }

  var model = part("model.tflite");
  var head = part("head.safetensors");
  var ready = false;
  // Why no photo can be answered any more, once the worker stopped.
  var stopped = null;
  var waiting = [];
  var cards = new Map();
  var nextId = 1;

  function say(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", !!isError);
  }

  // Both forms start the worker the same way: its wasm-bindgen script from a blob: URL, then
  // its module's bytes in the first message.
  var worker = Promise.all([part("afinar-inference-worker.js"), part("afinar-inference-worker_bg.wasm")]).then(
    function (parts) {
      // A module that does not start (no wasm SIMD here, no memory) says so like a crash.
      var boot = "\nself.onmessage = function (e) { self.onmessage = null; wasm_bindgen({ module_or_path: e.data })" +
        ".catch(function (err) { self.postMessage({ Crashed: String((err && err.message) || err) }); }); };\n";
      var url = URL.createObjectURL(new Blob([parts[0], boot], { type: "text/javascript" }));
      var w = new Worker(url);
      w.onmessage = function (e) { answer(w, e.data); };
      w.onerror = function (e) {
        say("The model could not start (" + (e.message || "worker error") + ").", true);
        unanswered("The model could not start, so this photo has no answer.");
      };
      w.postMessage(parts[1], [parts[1]]);
      return w;
    },
  );
  worker.catch(function (e) {
    say("The app's files could not be read (" + e.message + ").", true);
    unanswered("The app's files could not be read, so this photo has no answer.");
  });

  function answer(w, reply) {
    var kind = typeof reply === "string" ? reply : Object.keys(reply)[0];
    var body = typeof reply === "string" ? null : reply[kind];
    if (kind === "Started") {
      Promise.all([model, head]).then(function (files) {
        w.postMessage({ LoadModelFile: { name: "model.tflite", bytes: new Uint8Array(files[0]) } });
        w.postMessage({ UseHead: { bytes: new Uint8Array(files[1]) } });
      }, function (e) {
        say("The model could not be read (" + e.message + ").", true);
        unanswered("The model could not be read, so this photo has no answer.");
      });
    } else if (kind === "ModelRefused" || kind === "HeadRefused") {
      var why = kind === "ModelRefused" ? "The model can't be used: " + body.message : body;
      say(why, true);
      unanswered(why);
    } else if (kind === "HeadReady") {
      ready = true;
      say("Ready: choose, drop or paste photos, or use the camera.");
      waiting.splice(0).forEach(function (job) { send(w, job); });
      if ("serviceWorker" in navigator && location.protocol !== "file:" && !document.getElementById("model.tflite")) {
        navigator.serviceWorker.register("sw.js").catch(function () {});
      }
    } else if (kind === "Classified") {
      show(body.id, body.result);
    } else if (kind === "Crashed" || kind === "BadRequest") {
      say("The model stopped (" + body + "). Reload the page to start again.", true);
      unanswered("The model stopped before this photo's answer; reload the page and add it again.");
    }
  }

  // Every photo still waiting gets `why` as its answer: none will come.
  function unanswered(why) {
    stopped = why;
    waiting.length = 0;
    cards.forEach(function (_, id) { show(id, { Err: why }); });
  }

  function send(w, job) {
    w.postMessage({ Classify: { id: job.id, bytes: job.bytes } });
  }

  function classify(name, blob) {
    var id = nextId++;
    var card = document.createElement("article");
    card.className = "result";
    card.setAttribute("data-testid", "result");
    card.setAttribute("data-name", name);
    var body = document.createElement("div");
    var title = document.createElement("h2");
    title.textContent = "Classifying…";
    var label = document.createElement("p");
    label.className = "muted";
    label.textContent = name;
    body.append(title, label);
    card.append(document.createElement("div"), body);
    results.prepend(card);
    cards.set(id, { card: card, title: title, body: body, name: name });
    if (stopped) return show(id, { Err: stopped });
    if (blob.size > MAX_PHOTO_BYTES) {
      return show(id, { Err: "This file is over " + MAX_PHOTO_BYTES / 1048576 + " MB, too large for a photo." });
    }
    blob.arrayBuffer().then(function (buffer) {
      var job = { id: id, bytes: new Uint8Array(buffer) };
      if (ready) worker.then(function (w) { send(w, job); });
      else waiting.push(job);
    }, function (e) { show(id, { Err: "This file can't be read (" + e.message + ")." }); });
  }

  function percent(p) {
    return (p * 100).toFixed(1) + " %";
  }

  function show(id, result) {
    var entry = cards.get(id);
    if (!entry) return;
    cards.delete(id);
    if (result.Err !== undefined) {
      entry.title.textContent = entry.name;
      var error = document.createElement("p");
      error.className = "error";
      error.setAttribute("role", "alert");
      error.setAttribute("data-testid", "error");
      error.textContent = result.Err;
      entry.body.append(error);
      return;
    }
    var answer = result.Ok;
    var custom = answer.custom || [];
    var best = custom[0];
    var img = document.createElement("img");
    img.alt = entry.name + ", as the model saw it";
    img.src = URL.createObjectURL(new Blob([answer.thumbnail_jpeg], { type: "image/jpeg" }));
    entry.card.firstChild.replaceWith(img);
    entry.title.textContent = "";
    entry.title.setAttribute("data-testid", "custom-top");
    if (best) {
      var sure = best.prob >= notSureBelow;
      entry.title.setAttribute("data-class", best.label);
      entry.title.setAttribute("data-prob", String(best.prob));
      var strong = document.createElement("strong");
      strong.setAttribute("data-testid", "custom-label");
      strong.textContent = sure ? best.label : "not sure";
      if (!sure) entry.title.className = "not-sure";
      entry.title.append(strong, " ", sure ? percent(best.prob) : "(closest: " + best.label + " " + percent(best.prob) + ")");
    }
    var bars = document.createElement("ol");
    bars.className = "bars";
    bars.setAttribute("aria-label", "Your classes");
    custom.forEach(function (p) {
      var item = document.createElement("li");
      item.setAttribute("data-testid", "class-bar");
      item.setAttribute("data-class", p.label);
      item.setAttribute("data-prob", String(p.prob));
      var name = document.createElement("span");
      name.textContent = p.label;
      var bar = document.createElement("span");
      bar.className = "bar";
      var fill = document.createElement("span");
      fill.style.width = (p.prob * 100).toFixed(1) + "%";
      bar.append(fill);
      var value = document.createElement("span");
      value.className = "value";
      value.textContent = percent(p.prob);
      item.append(name, bar, value);
      bars.append(item);
    });
    entry.body.append(bars);
  }

  function classifyAll(files) {
    // Every file goes to the worker, which says why one is not a photo it can read.
    Array.prototype.forEach.call(files || [], function (file) { classify(file.name, file); });
  }

  var input = document.getElementById("photo-input");
  input.addEventListener("change", function () {
    classifyAll(input.files);
    input.value = "";
  });
  var intake = document.getElementById("intake");
  document.addEventListener("dragover", function (e) {
    e.preventDefault();
    intake.classList.add("dragging");
  });
  document.addEventListener("dragleave", function () { intake.classList.remove("dragging"); });
  document.addEventListener("drop", function (e) {
    e.preventDefault();
    intake.classList.remove("dragging");
    classifyAll(e.dataTransfer && e.dataTransfer.files);
  });
  document.addEventListener("paste", function (e) {
    classifyAll(e.clipboardData && e.clipboardData.files);
  });

  var camera = document.getElementById("camera");
  var video = document.getElementById("camera-video");
  var frames = 0;
  document.getElementById("camera-button").addEventListener("click", function () {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return say("This browser gives this page no camera (it needs https or localhost).", true);
    }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (stream) {
      video.srcObject = stream;
      camera.hidden = false;
      return video.play();
    }).catch(function (e) { say("The camera could not be opened (" + e.message + ").", true); });
  });
  document.getElementById("snap").addEventListener("click", function () {
    if (!video.videoWidth) return;
    var canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob(function (blob) {
      if (blob) classify("Camera frame " + ++frames, blob);
    }, "image/jpeg", 0.92);
  });
})();
