#!/usr/bin/env python3
"""How the page's "not sure" threshold trades answers for accuracy, on held-out photos.

Reads `afinar classify --head H --json` lines (one per photo, the photo's class being the name
of its folder) and prints, per threshold, the share of photos answered (top class at or above
it), the accuracy of those answers, and the share of all mistakes that fall below it (shown as
"not sure" instead of a wrong class). scripts/bench-not-sure runs it on a fifth of the flowers'
training split held out of the head's training; the table goes into bench/results.md.
"""
import json
import sys
from pathlib import Path


def main(path):
    rows = []
    for line in Path(path).read_text().splitlines():
        r = json.loads(line)
        if "top" not in r:
            continue
        truth = Path(r["file"]).parent.name
        best = r["top"][0]
        rows.append((best["prob"], best["label"] == truth))
    wrong_total = sum(1 for _, right in rows if not right)
    print(f"{len(rows)} photos, accuracy {100 * sum(r for _, r in rows) / len(rows):.1f} %, {wrong_total} mistakes")
    print()
    print("| not sure below | answered | accuracy of the answers | mistakes shown as not sure | right answers lost |")
    print("|---|---|---|---|---|")
    right_total = len(rows) - wrong_total
    for t in [0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]:
        kept = [right for p, right in rows if p >= t]
        caught = sum(1 for p, right in rows if p < t and not right)
        lost = sum(1 for p, right in rows if p < t and right)
        accuracy = 100 * sum(kept) / max(1, len(kept))
        print(
            f"| {t * 100:.0f} % | {100 * len(kept) / len(rows):.1f} % | {accuracy:.1f} % "
            f"| {100 * caught / max(1, wrong_total):.0f} % | {100 * lost / max(1, right_total):.1f} % |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
