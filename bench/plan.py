"""Which photos each part of the browser benchmark uses, from the fixed split CSV.

python3 bench/plan.py SPLIT_CSV [--quick] > photos.json
"""

import csv
import json
import sys


def main():
    split_csv = sys.argv[1]
    quick = "--quick" in sys.argv
    rows = list(csv.DictReader(open(split_csv, newline="")))
    classes = sorted({r["class"] for r in rows})
    rel = lambda r: r["relative_path"].split("/", 1)[1]  # relative to flower_photos/
    by_class = {c: sorted(rel(r) for r in rows if r["class"] == c and r["split"] == "val") for c in classes}
    per_class = 2 if quick else 10
    # Inference: the same photos for every engine, classes interleaved.
    inference = [by_class[c][i] for i in range(per_class) for c in classes]
    train = [(rel(r), classes.index(r["class"])) for r in rows if r["split"] == "train"]
    per = [[t for t in train if t[1] == c][: 4 if quick else None] for c in range(len(classes))]
    # Classes taken in turn, so that any prefix (the WebGPU and fine-tuning subsets) has them all.
    train = [p[i] for i in range(max(map(len, per))) for p in per if i < len(p)]
    n_train = sum(1 for r in rows if r["split"] == "train")
    json.dump(
        {
            "classes": classes,
            "inference": inference,
            "train": train,
            # Sizes of the browser's scaling run (features from the native run).
            "scaling": [30, 60, 120] if quick else [250, 1000, n_train, 10000],
            "finetune_photos": 10 if quick else 250,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
