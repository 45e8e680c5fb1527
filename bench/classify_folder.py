"""`afinar classify --json` over a folder against a LiteRT + Pillow script doing the same job
(bench/litert_classify_folder.py), rounds interleaved: wall time of each whole command (start-up,
model load, decoding, inference, printing), photos per second, and how often the two agree on
the top-1 label (the same .tflite; the resize filters differ).

Prints one JSON object.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def timed(command, env):
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return seconds, {line["file"]: line for line in lines}


def top1(line):
    return line["top"][0]["index"] if "top" in line else None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--afinar", required=True)
    p.add_argument("--python", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("folder")
    args = p.parse_args()

    env = os.environ | {"RAYON_NUM_THREADS": str(args.threads)}
    afinar = [args.afinar, "classify", "--json", "--model", args.model, args.folder]
    litert = [args.python, os.path.join(os.path.dirname(__file__), "litert_classify_folder.py"),
              "--model", args.model, "--labels", args.labels, "--threads", str(args.threads),
              args.folder]
    seconds = {"afinar": [], "litert": []}
    ratios = []
    for r in range(args.rounds):
        # The order alternates so that neither always runs on a machine warmed by the other.
        order = [("afinar", afinar), ("litert", litert)]
        if r % 2:
            order.reverse()
        results = {}
        for name, command in order:
            s, results[name] = timed(command, env)
            seconds[name].append(s)
        ratios.append(seconds["afinar"][-1] / seconds["litert"][-1])
    a, b = results["afinar"], results["litert"]
    photos = len(a)
    both = [f for f in a if top1(a[f]) is not None and top1(b.get(f, {})) is not None]
    same = sum(top1(a[f]) == top1(b[f]) for f in both)
    print(json.dumps({
        "folder": args.folder,
        "photos": photos,
        "litert_photos": len(b),
        "threads": args.threads,
        "seconds": seconds,
        "photos_per_s": {k: photos / statistics.median(v) for k, v in seconds.items()},
        "ratio afinar/litert": {"median": statistics.median(ratios), "min": min(ratios),
                                "max": max(ratios), "n": len(ratios)},
        "top1_agreement": same / len(both) if both else None,
    }))


if __name__ == "__main__":
    main()
