"""Checks a `scripts/bench` results.json for completeness and sanity — never for speed.

Run by scripts/test after `scripts/bench --quick`, so the harness cannot rot: every section is
there, every engine ran, the anchors agree with Afinar on what the photos show (same model),
and training learned something. Times are measured, reported, and not judged here.
"""

import json
import sys


def main():
    r = json.load(open(sys.argv[1]))
    problems = []

    def need(cond, what):
        if not cond:
            problems.append(what)

    n = r["native_inference"]
    for engine in ("afinar (ndarray)", "litert"):
        for figure in ("decoded/1", "decoded/32", "jpeg/1"):
            s = n[engine].get(figure)
            need(s and s["n"] > 0 and s["median"] > 0, f"native {engine} {figure}")
    need(n["ratio afinar/litert"]["decoded/1"], "native ratio")
    # The float32 path on the same kernels: the anchor of the file's integer one.
    need((n.get("afinar (float32)") or {}).get("decoded/1"), "native float32 anchor")
    need(n.get("runs_on"), "what ran natively")

    # The CLI over a folder against a LiteRT script: every photo answered by both, mostly alike.
    folder = r.get("classify_folder") or {}
    need(folder.get("photos", 0) > 0 and folder.get("litert_photos") == folder.get("photos"),
         "classifying a folder: both answered every photo")
    need((folder.get("top1_agreement") or 0) >= 0.8, f"classifying a folder: top-1 agreement {folder.get('top1_agreement')}")

    b = r["browser"]
    for engine in ("afinar-cpu", "afinar-cpu-float", "mediapipe", "litert"):
        rec = b["inference"].get(engine)
        need(rec and rec["ms_per_photo"]["median"] > 0, f"browser {engine}")
        # The same .tflite on the same photos: the anchors must mostly agree with Afinar's top-1.
        agreement = b["top1_agreement"].get(engine)
        need(agreement is not None and agreement >= 0.7, f"{engine} top-1 agreement {agreement}")
    for ratio in ("afinar-cpu/mediapipe", "afinar-cpu/litert", "afinar-cpu/afinar-cpu-float"):
        need(b["ratios"].get(ratio), f"browser ratio {ratio}")
    need(b["app_load"].get("cpu", {}).get("cold_ms", 0) > 0, "app cold load")
    need(b["sizes"]["worker_wasm"]["gzip"] > 0, "wasm size")
    need(b["sizes"]["inference_worker_wasm"]["gzip"] > 0, "inference worker wasm size")
    need(b.get("litert_first", {}).get("cold_ms", 0) > 0, "LiteRT.js navigation to first prediction")
    need(n.get("with a head", {}).get("head/1"), "native classification with a head")

    t = r["native_training"]
    chance = 1 / len(r["photos"]["classes"])
    need(t["features_photos_per_s"] > 0, "native features/s")
    need(t["default_recipe"]["val_accuracy"] > chance + 0.2, "native head accuracy above chance")
    need(t["finetune"]["total_ms"] > 0, "native fine-tuning")
    need(len(t["scaling"]) >= 3 and any(s["synthetic"] for s in t["scaling"]), "native scaling")
    cpu = b["training"].get("afinar-cpu")
    need(cpu and cpu["head"]["val_accuracy"] is not None, "browser training")
    need(len(b["scaling"]) == len(t["scaling"]), "browser scaling")
    pool = b.get("prepare_workers") or {}
    need(all(pool.get("seconds", {}).get(k) for k in ("1", "2")), "preparing on 1 and 2 workers")
    need(not [e for e in b.get("errors", []) if "panicked" in e], "no panic in the browser")

    if problems:
        print("bench check failed: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)
    print(f"bench check: {sys.argv[1]} complete")


if __name__ == "__main__":
    main()
