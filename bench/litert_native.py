"""LiteRT (PyPI ai-edge-litert) on the same .tflite, inputs and thread count as Afinar's native
benchmark: ms per photo at batch 1 and 32 from decoded 224x224 input, and from a JPEG file.

Prints one JSON object. Batch 32 is 32 batch-1 calls: XNNPACK refuses to resize this graph to a
batch of 32 ("failed to reshape"), and a LiteRT user classifying 32 photos would loop.
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np
from PIL import Image
from ai_edge_litert import interpreter as litert


def center_crop_224(path):
    """Decode, centre-crop to a square, bilinear-resize to 224 (as Afinar's preprocessing)."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    return np.asarray(image.resize((224, 224), Image.BILINEAR), dtype=np.uint8)


def timed(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--rgb", nargs="+", required=True, help="raw 224x224x3 uint8 files")
    p.add_argument("--jpeg", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=30)
    args = p.parse_args()

    interp = litert.Interpreter(model_path=args.model, num_threads=args.threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]
    photos = [np.fromfile(f, dtype=np.uint8).reshape(1, 224, 224, 3) for f in args.rgb]

    def run(x):
        interp.set_tensor(inp, x)
        interp.invoke()
        return interp.get_tensor(out)

    top = int(np.argmax(run(photos[0])))
    batch32 = [photos[i % len(photos)] for i in range(32)]
    figures = {
        "decoded/1": timed(lambda: run(photos[0]), args.warmup, args.iters),
        "decoded/32": [
            t / 32 for t in timed(lambda: [run(x) for x in batch32], 1, max(3, args.iters // 8))
        ],
        "jpeg/1": timed(lambda: run(center_crop_224(args.jpeg)[None]), args.warmup, args.iters),
    }
    json.dump(
        {
            "engine": "litert",
            "version": getattr(litert, "__version__", None) or _version(),
            "threads": args.threads,
            "top1_index": top,
            "ms_per_photo": figures,
            "median": {k: statistics.median(v) for k, v in figures.items()},
        },
        sys.stdout,
    )
    print()


def _version():
    from importlib.metadata import version

    return version("ai-edge-litert")


if __name__ == "__main__":
    main()
