"""Turns one `scripts/bench` run (target/bench-run/, or bench-quick-run/) into results.json and results.md.

Every figure is a median with min/max over repeated measurements after warm-up; each ratio
Afinar / anchor is taken round by round (the engines ran back to back within a round), then
summarized the same way. `bench/history.md` (the optimizations and their before/after ratios,
kept by hand) is appended to the Markdown.
"""

import argparse
import glob
import json
import os
import platform
import re
import statistics
import subprocess
from datetime import datetime, timezone
from pathlib import Path


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def criterion_ms_per_photo(path, batch):
    """Per-sample ms per photo from criterion's sample.json (times in ns for `iters` runs)."""
    s = json.loads(Path(path).read_text())
    return [t / i / 1e6 / batch for t, i in zip(s["times"], s["iters"])]


def command(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def lock_version(name):
    text = Path("Cargo.lock").read_text()
    m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(name), text)
    return m.group(1) if m else None


def npm_version(name):
    try:
        return json.loads(Path("node_modules", name, "package.json").read_text())["version"]
    except OSError:
        return None


def machine():
    cpu = None
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = None
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "os": platform.platform(),
        "rustc": command("rustc", "--version"),
        "node": command("node", "--version"),
        "python": platform.python_version(),
    }


def versions(browser):
    from importlib.metadata import version

    return {
        "afinar": command("git", "rev-parse", "--short", "HEAD"),
        "burn": lock_version("burn"),
        "ai-edge-litert": version("ai-edge-litert"),
        "@mediapipe/tasks-vision": npm_version("@mediapipe/tasks-vision"),
        "@litertjs/core": npm_version("@litertjs/core"),
        "chromium": browser.get("chromium"),
        "trunk": command("trunk", "--version"),
        "wasm-bindgen": command("wasm-bindgen", "--version"),
    }


FIGURES = [("decoded/1", "decoded_1", 1), ("decoded/32", "decoded_32", 32), ("jpeg/1", "jpeg_1", 1)]


def native_inference(raw):
    rounds = sorted(glob.glob(f"{raw}/round-*"))
    out = {"afinar (ndarray)": {}, "afinar (burn layers)": {}, "afinar (float32)": {}, "litert": {},
           "ratio afinar/litert": {}, "ratio float32/litert": {}}
    runs_on = Path(f"{raw}/runs-on.txt")
    out["runs_on"] = runs_on.read_text().strip() if runs_on.exists() else None
    for figure, file, batch in FIGURES:
        afinar_all, burn_all, float_all, litert_all, ratios, float_ratios = [], [], [], [], [], []
        for r in rounds:
            a = criterion_ms_per_photo(f"{r}/afinar/{file}.json", batch)
            if Path(f"{r}/afinar-burn/{file}.json").exists():
                burn_all += criterion_ms_per_photo(f"{r}/afinar-burn/{file}.json", batch)
            f = None
            if Path(f"{r}/afinar-float/{file}.json").exists():
                f = criterion_ms_per_photo(f"{r}/afinar-float/{file}.json", batch)
                float_all += f
            lt = json.loads(Path(f"{r}/litert.json").read_text())
            b = lt["ms_per_photo"][figure]
            afinar_all += a
            litert_all += b
            ratios.append(statistics.median(a) / statistics.median(b))
            if f:
                float_ratios.append(statistics.median(f) / statistics.median(b))
        out["afinar (ndarray)"][figure] = stats(afinar_all)
        out["afinar (burn layers)"][figure] = stats(burn_all) if burn_all else None
        out["afinar (float32)"][figure] = stats(float_all) if float_all else None
        out["ratio float32/litert"][figure] = stats(float_ratios) if float_ratios else None
        out["litert"][figure] = stats(litert_all)
        out["ratio afinar/litert"][figure] = stats(ratios)
    # With a trained head, ImageNet and the head's classes from one pass: beside decoded/1, per
    # round (the same run), what a head costs a photo.
    for figure, file in (("head/1", "head_1"), ("finetuned-top/1", "finetuned-top_1")):
        samples, ratios = [], []
        for r in rounds:
            f = Path(f"{r}/afinar/{file}.json")
            if not f.exists():
                continue
            with_head = criterion_ms_per_photo(f, 1)
            plain = criterion_ms_per_photo(f"{r}/afinar/decoded_1.json", 1)
            samples += with_head
            ratios.append(statistics.median(with_head) / statistics.median(plain))
        if samples:
            out.setdefault("with a head", {})[figure] = {"ms": stats(samples), "ratio to decoded/1": stats(ratios)}
    lt = json.loads(Path(f"{rounds[0]}/litert.json").read_text())
    out["litert_threads"] = lt["threads"]
    for figure, file, batch in FIGURES[:2]:
        f = Path(f"{raw}/wgpu-{file}.json")
        if f.exists():
            out.setdefault("afinar (wgpu)", {})[figure] = stats(criterion_ms_per_photo(f, batch))
    return out


def fmt(s, digits=1):
    if not s:
        return "–"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def pct(x):
    return "–" if x is None else f"{100 * x:.1f} %"


def markdown(r):
    m, v = r["machine"], r["versions"]
    lines = [
        "# Afinar benchmarks",
        "",
        f"Written by `scripts/bench{' --quick' if r['quick'] else ''}` on {r['date']}. "
        "Figures: median (min–max) over repeated runs after warm-up; every ratio is "
        "Afinar / anchor, taken round by round from runs interleaved in this one invocation.",
        "",
        "## Machine and versions",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}",
        f"- {m['rustc']}; Node {m['node']}; Python {m['python']}",
        "- " + "; ".join(f"{k} {val}" for k, val in v.items() if val),
        "",
    ]
    n = r["native_inference"]
    lines += [
        "## 1. Native inference (ms per photo)",
        "",
        f"Same `.tflite`, same 224×224 inputs (the reference `.input.rgb` pixels), {n['litert_threads']} "
        "threads each. LiteRT runs the uint8 graph with XNNPACK. Afinar's frozen backbone runs on its "
        "own CPU kernels (NHWC, packed weights, the best SIMD level of this CPU): *kernels* is its "
        "default, the file's own 8-bit integers where the CPU has 8-bit dot products (AVX-512 VNNI), "
        "else float32 over the weights dequantized once; *float32* is the float path on the same "
        "kernels (the anchor of the integer one); *Burn layers* is the float network on Burn's ndarray "
        "ops, the path before the kernels. Batch 32 in LiteRT is 32 batch-1 calls (XNNPACK refuses to "
        "resize this graph). `jpeg/1` includes decoding and the centre crop (Pillow for LiteRT).",
        "",
        f"What ran as *kernels*: {n.get('runs_on') or 'not recorded'}.",
        "",
        "| input / batch | Afinar (kernels) | Afinar (float32) | Afinar (Burn layers) | LiteRT "
        "| ratio kernels / LiteRT | ratio float32 / LiteRT |",
        "|---|---|---|---|---|---|---|",
    ]
    for figure, _, _ in FIGURES:
        lines.append(
            f"| {figure} | {fmt(n['afinar (ndarray)'][figure])} | "
            f"{fmt((n.get('afinar (float32)') or {}).get(figure))} | "
            f"{fmt(n.get('afinar (burn layers)', {}).get(figure))} | {fmt(n['litert'][figure], 2)} | "
            f"{fmt(n['ratio afinar/litert'][figure], 2)} | "
            f"{fmt((n.get('ratio float32/litert') or {}).get(figure), 2)} |"
        )
    for figure, h in n.get("with a head", {}).items():
        lines.append(
            f"\nWith a trained head ({figure}: ImageNet and the head's classes from one pass on the kernels): "
            f"{fmt(h['ms'])} ms/photo, {fmt(h['ratio to decoded/1'], 3)} × decoded/1 (target for the head alone: 1 ± 0.05)."
        )
    folder = r.get("classify_folder")
    if folder:
        lines += [
            "",
            f"Classifying a folder ({folder['photos']} photos, {folder['threads']} threads; the whole "
            "command: start-up, model load, decoding, inference, one JSON line per photo): "
            f"`afinar classify --json` {folder['photos_per_s']['afinar']:.0f} photos/s, a LiteRT + "
            f"Pillow script doing the same job (`bench/litert_classify_folder.py`) "
            f"{folder['photos_per_s']['litert']:.0f} photos/s: ratio of times "
            f"{fmt(folder['ratio afinar/litert'], 2)} (target ≤ 1.0); the two agree on the top-1 "
            f"label for {pct(folder['top1_agreement'])} of the photos (same file; Pillow's resize "
            "filter is not Afinar's).",
        ]
    if "afinar (wgpu)" in n:
        w = n["afinar (wgpu)"]
        lines += ["", f"Afinar on wgpu (native Vulkan adapter): decoded/1 {fmt(w.get('decoded/1'))}, "
                  f"decoded/32 {fmt(w.get('decoded/32'))} ms/photo."]
    b = r["browser"]
    inf = b["inference"]
    lines += [
        "",
        "## 2. Browser inference (headless Chromium, one thread each)",
        "",
        f"{len(r['photos']['inference'])} photos per round after warm-up. Afinar: *model* = input "
        "tensor to probabilities in its worker; *round trip* = JPEG bytes posted to the worker to "
        "the answer back (decode, crop, model, thumbnail). MediaPipe gets the 224×224 crop as "
        "`ImageData`; LiteRT.js gets it as a uint8 tensor (output read back included). "
        "*afinar-cpu* runs the model file's own 8-bit integers (the page's default, `simd128` dot "
        "products); *afinar-cpu-float* is the same worker in float32, asked for in its URL.",
        "",
        "| engine | ms/photo | round trip | load to ready (ms) | top-1 agrees with Afinar CPU |",
        "|---|---|---|---|---|",
    ]
    for name, rec in inf.items():
        load = b["load"].get(name, {})
        lines.append(
            f"| {name} | {fmt(rec['ms_per_photo'])} | {fmt(rec.get('wall_ms_per_photo'))} | "
            f"{load.get('ms', float('nan')):.0f} | {pct(b['top1_agreement'].get(name))} |"
        )
    for name, load in b["load"].items():
        if "error" in load:
            lines.append(f"| {name} | failed: {load['error']} | | | |")
    lines.append("")
    for k, s in b.get("ratios", {}).items():
        lines.append(f"- ratio {k} (model time, per round): {fmt(s, 2)}")
    app = b.get("app_load", {})
    browsers = {"cpu": "a browser without WebGPU", "webgpu": "a browser with a WebGPU adapter"}
    for k, a in app.items():
        lines.append(
            f"- the app, navigation to first prediction (model shown ready + photo to answer, the page's clock; "
            f"median of {len(a.get('runs', [])) or 1}), {browsers.get(k, k)} ({a['backend']}): "
            f"cold {a['cold_ms']:.0f} ms, warm (cached) {a['warm_ms']:.0f} ms; with the harness's own delays "
            f"{a.get('cold_wall_ms', float('nan')):.0f} / {a.get('warm_wall_ms', float('nan')):.0f} ms")
    lite = b.get("litert_first")
    cpu = app.get("cpu", {})
    if lite and cpu.get("cold_ms"):
        # Run by run, as every other ratio here: each app start beside the LiteRT.js start
        # measured right after it.
        pairs = zip(cpu.get("runs", []), lite.get("runs", []))
        ratios = [a["cold"]["first_ms"] / l["first_ms"] for a, l in pairs]
        ratio = fmt(stats(ratios), 2) if ratios else f"{cpu['cold_ms'] / lite['cold_ms']:.2f}"
        lines.append(
            f"- LiteRT.js the same way (navigation to its first prediction, a fresh profile, the page's clock): "
            f"{lite['cold_ms']:.0f} ms ({lite.get('wall_ms', float('nan')):.0f} with the harness's delays); "
            f"the app's cold start / LiteRT.js's, run by run: {ratio} (target ≤ 1.0); "
            f"warm {cpu['warm_ms']:.0f} ms (target ≤ 300)")
    sz = b["sizes"]
    if "inference_worker_wasm" in sz:
        iw = sz["inference_worker_wasm"]
        lines.append(
            f"- wasm: inference worker (every visit) {iw['raw'] / 1e6:.2f} MB ({iw['gzip'] / 1e6:.2f} MB gzip; target ≤ 1.0 MB)")
    lines.append(
        f"- wasm: training worker (Burn; training and WebGPU only) {sz['worker_wasm']['raw'] / 1e6:.1f} MB ({sz['worker_wasm']['gzip'] / 1e6:.1f} MB gzip), "
        f"page {sz['page_wasm']['raw'] / 1e6:.2f} MB ({sz['page_wasm']['gzip'] / 1e6:.2f} MB gzip)")
    for key, what in [("head_alone", "the head alone"), ("finetuned", "a head with the top 2 blocks fine-tuned")]:
        pub = sz.get("published", {}).get(key)
        if pub:
            over = pub["single_file"] - pub["model"]
            lines.append(
                f"- a published app, {what} (head file {pub['head'] / 1e6:.2f} MB): single file "
                f"{pub['single_file'] / 1e6:.2f} MB = the model {pub['model'] / 1e6:.2f} MB + {over / 1e6:.2f} MB "
                f"(goal: model + ≤ 1.5 MB); folder as a zip {pub['zip'] / 1e6:.2f} MB; written in {pub['ms']:.0f} ms")
    mem = inf.get("afinar-cpu", {}).get("memory")
    if mem:
        lines.append(f"- worker wasm memory after inference (CPU; it never shrinks, so the peak): {mem / 1e6:.0f} MB")
    t = r["native_training"]
    d = t["default_recipe"]
    ft = t["finetune"]
    lines += [
        "",
        "## 3. Training (same run: speed and quality together)",
        "",
        f"Native (ndarray, {t['threads']} threads), {t['train_photos']} train / {t['val_photos']} "
        "validation photos of the fixed split:",
        "",
        f"- features: {t['features_photos_per_s']:.1f} photos/s (decode, crop, backbone; batches of 32)",
        f"- default recipe (10 epochs, head on cached features): {d['total_ms']:.0f} ms in all, "
        f"{statistics.median(d['ms_per_epoch']):.0f} ms per epoch (median; validation included); "
        f"validation accuracy **{pct(d['val_accuracy'])}**",
        f"- fine-tuning stage (last {ft['unfreeze']} blocks, {ft['epochs']} epochs, {ft['photos']} photos): "
        f"boundary activations {ft['boundary_photos_per_s']:.1f} photos/s ({ft['boundary_mb']:.0f} MB), "
        f"{ft['total_ms'] / 1000:.1f} s, {statistics.median(ft['ms_per_epoch']) / 1000:.1f} s per epoch; "
        f"validation accuracy {pct(ft['val_accuracy'])} (head alone on the same photos {pct(ft['frozen_val_accuracy'])})",
        "",
        "In the browser (the app's worker and training run; 20 % of each class held out). WebGPU "
        "runs on SwiftShader here (no GPU): a few photos, for the code path and its cost, not for "
        "accuracy (4 held-out photos).",
        "",
        "| backend | photos | prepare (ms/photo) | head: 10 epochs (ms) | val accuracy | fine-tune: photos, epochs, s | val accuracy (head alone) | wasm memory |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, bt in b.get("training", {}).items():
        h, f = bt["head"], bt["finetune"]
        lines.append(
            f"| {name} | {bt['photos']} | {fmt(bt['embed_ms_per_photo'], 0)} | {h['train_ms']:.0f} | "
            f"{pct(h['val_accuracy'])} | {f['photos']}, {f['epochs']}, {f['train_ms'] / 1000:.1f} | "
            f"{pct(f['val_accuracy'])} ({pct(f['frozen_val_accuracy'])}) | {f['memory'] / 1e6:.0f} MB |")
    pool = b.get("prepare_workers")
    if pool:
        one, two = (statistics.median(pool["seconds"][k]) for k in ("1", "2"))
        lines += [
            "",
            f"Preparing photos on several workers (the page's pool of inference workers): "
            f"{pool['photos']} training photos with the *best* recipe's rows (boundary activations "
            f"and {pool['rows']['views']} augmented views), rounds interleaved, median of "
            f"{len(pool['seconds']['1'])}: 1 worker {one:.1f} s, 2 workers {two:.1f} s: "
            f"**{one / two:.2f}×** faster with 2.",
        ]
    lines += recipe_ladder(r.get("recipes", []))
    lines += [
        "",
        "## 4. Scaling with the number of training photos",
        "",
        "Native: features extracted (cumulative time over one pass), the default head recipe on the "
        "first N, validated on the whole validation split. Sizes above the train split are "
        "synthetic: mirrored and cropped variants of the train photos, run through the backbone like "
        "real ones. Browser: the same features, trained by the app's worker (one thread, 20 % held "
        "out), each size in a fresh worker; its wasm memory includes the model (~58 MB after one "
        "photo). Native peak RSS is the process's so far (the features of all sizes are held).",
        "",
        "| photos | features (s, native) | head 10 epochs native (ms) | val accuracy | features (MB) | RSS growth while training (MB) | peak RSS native (MB) | head 10 epochs browser (ms) | worker wasm memory (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    browser_scaling = {s["photos"]: s for s in b.get("scaling", [])}
    for s in t["scaling"]:
        bs = browser_scaling.get(s["photos"], {})
        lines.append(
            f"| {s['photos']}{' (synthetic)' if s['synthetic'] else ''} | {s['extract_s']:.1f} | "
            f"{s['total_ms']:.0f} | {pct(s['val_accuracy'])} | {s['features_mb']:.1f} | "
            f"{s['rss_growth_mb']:.1f} | {s['peak_rss_mb']:.0f} | {bs.get('train_ms', float('nan')):.0f} | "
            f"{bs.get('memory', float('nan')) / 1e6:.0f} |")
    history = Path("bench/history.md")
    if history.exists():
        lines += ["", history.read_text().strip()]
    return "\n".join(lines) + "\n"


def recipe_runs(path="bench/recipes.jsonl"):
    """The runs `scripts/bench-recipes` (or, for bench/recipes-page.jsonl,
    `bench/browser-recipe.mjs`) recorded, if any."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def recipe_ladder(runs):
    """The recipe ladder's table from `scripts/bench-recipes` (bench/recipes.jsonl)."""
    if not runs:
        return []
    lines = [
        "",
        "### The recipe ladder (`scripts/bench-recipes`)",
        "",
        f"`afinar train --recipe R --seed S` on the fixed split (2,775 train / 695 validation), "
        f"natively on {runs[0]['cores']} cores, from a cold feature cache (features and augmented "
        "views computed inside the timed run); mean (range) over the seeds "
        f"{', '.join(sorted({str(x['seed']) for x in runs}, key=int))}.",
        "",
        "| recipe | validation accuracy | macro F1 | time, median (range), min | kept epoch / epochs run |",
        "|---|---|---|---|---|",
    ]
    for name in ["quick", "better", "best"]:
        rs = [x for x in runs if x["recipe"] == name]
        if not rs:
            continue
        acc = [x["val_accuracy"] for x in rs]
        f1 = [x["macro_f1"] for x in rs]
        minutes = [x["seconds"] / 60 for x in rs]
        kept = ", ".join(f"{x['kept_epoch']}/{x['epochs_run']}" for x in rs)
        lines.append(
            f"| {name} | **{pct(statistics.mean(acc))}** ({pct(min(acc))}–{pct(max(acc))}) | "
            f"{statistics.mean(f1):.3f} | {statistics.median(minutes):.1f} ({min(minutes):.1f}–{max(minutes):.1f}) | {kept} |")
    return lines + page_recipes(recipe_runs("bench/recipes-page.jsonl"))


def page_recipes(runs):
    """The ladder's recipes trained in the page's worker (`bench/browser-recipe.mjs`)."""
    if not runs:
        return []
    lines = [
        "",
        "In the page (`node bench/browser-recipe.mjs --recipe R --seed S [--workers N]`): the app's "
        "workers on the CPU (wasm, no WebGPU), the same split, every photo prepared as the page "
        "prepares it (training photos with the recipe's views, on N workers) and then trained "
        "(the fine-tuning stage on N workers since 2026-12-08, on one before), one run per line.",
        "",
        "| recipe | seed | workers preparing | workers fine-tuning | validation accuracy | macro F1 | time (min): prepare + train = total | kept epoch / epochs run | wasm memory (MB): training worker + helpers |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for x in runs:
        f1 = "–" if x.get("macro_f1") is None else f"{x['macro_f1']:.3f}"
        tuning = x.get("cores", 1) if "fine-tuned on" in x.get("where", "") else 1
        lines.append(
            f"| {x['recipe']} | {x['seed']} | {x.get('cores', 1)} | {tuning} | **{pct(x['val_accuracy'])}** | {f1} | "
            f"{x['prepare_seconds'] / 60:.1f} + {x['train_seconds'] / 60:.1f} = {x['seconds'] / 60:.1f} | "
            f"{x['kept_epoch']}/{x['epochs_run']} | "
            f"{' + '.join(str(m) for m in [x['wasm_memory_mb'], *x.get('helper_memory_mb', [])])} |")
    return lines


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--raw")
    p.add_argument("--out", required=True)
    p.add_argument("--model")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--recipes-only", action="store_true",
                   help="take OUT/results.json as it is and only put in the recipe ladder's runs")
    args = p.parse_args()
    if args.recipes_only:
        report = json.loads(Path(args.out, "results.json").read_text())
        report["recipes"] = recipe_runs()
        Path(args.out, "results.json").write_text(json.dumps(report, indent=1) + "\n")
        Path(args.out, "results.md").write_text(markdown(report))
        return
    if not (args.raw and args.model):
        p.error("--raw and --model are needed")
    raw = args.raw
    browser = json.loads(Path(f"{raw}/browser.json").read_text())
    report = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "machine": machine(),
        "versions": versions(browser),
        "model": os.path.basename(args.model),
        "photos": json.loads(Path(f"{raw}/photos.json").read_text()) | {"train": None},
        "native_inference": native_inference(raw),
        "classify_folder": json.loads(Path(f"{raw}/classify-folder.json").read_text()),
        "native_training": json.loads(Path(f"{raw}/training.json").read_text()),
        "browser": browser,
        "recipes": recipe_runs(),
    }
    # The photo lists are long; the counts say enough.
    report["photos"]["train_count"] = len(json.loads(Path(f"{raw}/photos.json").read_text())["train"])
    for rec in report["browser"]["inference"].values():
        rec.pop("samples", None)
        rec.pop("wall_samples", None)
    os.makedirs(args.out, exist_ok=True)
    Path(args.out, "results.json").write_text(json.dumps(report, indent=1) + "\n")
    Path(args.out, "results.md").write_text(markdown(report))


if __name__ == "__main__":
    main()
