"""What a LiteRT user writes to do `afinar classify --json` over a folder: every photo decoded
with Pillow, centre-cropped and resized to 224 (as Afinar prepares a photo), run through the
same .tflite with LiteRT (PyPI ai-edge-litert), its top 5 printed as one JSON line per file.

    python bench/litert_classify_folder.py --model M --labels L --threads N FOLDER_OR_FILES...
"""

import argparse
import json
import os
import sys

import numpy as np
from ai_edge_litert import interpreter as litert

from litert_native import center_crop_224

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}


def photos(paths):
    """The files named, and the image files under each folder named, in sorted order."""
    for path in paths:
        if os.path.isdir(path):
            for folder, _, names in sorted(os.walk(path)):
                for name in sorted(names):
                    if os.path.splitext(name)[1].lower() in EXTENSIONS:
                        yield os.path.join(folder, name)
        else:
            yield path


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--top", type=int, default=5)
    p.add_argument("paths", nargs="+")
    args = p.parse_args()

    labels = open(args.labels).read().splitlines()
    interp = litert.Interpreter(model_path=args.model, num_threads=args.threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    detail = interp.get_output_details()[0]
    scale, zero = detail["quantization"]
    for path in photos(args.paths):
        try:
            x = center_crop_224(path)
        except Exception as e:  # noqa: BLE001 - a photo that does not decode is reported
            print(json.dumps({"file": path, "error": str(e)}))
            continue
        interp.set_tensor(inp, x[np.newaxis])
        interp.invoke()
        q = interp.get_tensor(detail["index"])[0].astype(np.float32)
        probs = (q - zero) * scale if scale else q
        best = np.argsort(-probs, kind="stable")[: args.top]
        top = [{"index": int(i), "label": labels[i], "prob": float(probs[i])} for i in best]
        print(json.dumps({"file": path, "top": top}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
