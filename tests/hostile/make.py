#!/usr/bin/env python3
"""Writes the hand-made hostile project files of this folder (refused with a message, in bounded
memory and time). `tests/hostile_files.rs` replays every file here (the hostile head files it
builds itself), and what fuzzing finds is added beside them (see the README's Tests section).

Run from anywhere: python3 tests/hostile/make.py
"""
import json
import os
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
QUICK = {"recipe": "quick", "epochs": 10, "batch_size": 32, "learning_rate": 0.001}


def project(name, classes, entries, settings=QUICK, method=zipfile.ZIP_STORED, head=None):
    """A project whose manifest lists `classes` (lists of entry names), with `entries` stored."""
    manifest = {
        "format": "afinar-project", "version": 1, "written_by": "tests/hostile/make.py",
        "classes": [
            {"name": f"class {i}", "photos": [{"name": "p.jpg", "file": f} for f in files]}
            for i, files in enumerate(classes)
        ],
        "settings": settings, "head": head, "last_run": None,
    }
    os.makedirs(os.path.join(HERE, "project"), exist_ok=True)
    with zipfile.ZipFile(os.path.join(HERE, "project", name), "w") as z:
        z.writestr(entry_info("manifest.json"), json.dumps(manifest), compress_type=zipfile.ZIP_DEFLATED)
        for entry, data in entries:
            z.writestr(entry_info(entry), data, compress_type=method)


def entry_info(name):
    """A zip entry with a fixed date, so that the files are the same each time they are made."""
    return zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))


two = [("photos/0/00001.jpg", b"x"), ("photos/1/00000.jpg", b"y")]
project("zip-slip-parent.afinar", [["../../../escaped.jpg", "photos/0/00001.jpg"], ["photos/1/00000.jpg"]],
        [("../../../escaped.jpg", b"escaped")] + two)
project("zip-slip-absolute.afinar", [["/tmp/afinar-escaped.jpg", "photos/0/00001.jpg"], ["photos/1/00000.jpg"]],
        [("/tmp/afinar-escaped.jpg", b"escaped")] + two)
project("zip-slip-backslash.afinar", [["photos\\0\\..\\..\\escaped.jpg", "photos/0/00001.jpg"], ["photos/1/00000.jpg"]],
        [("photos\\0\\..\\..\\escaped.jpg", b"escaped")] + two)
project("bomb-named-2000-times.afinar", [["photos/0/00000.jpg"] * 2000, ["photos/1/00000.jpg"]],
        [("photos/0/00000.jpg", bytes(8 << 20)), ("photos/1/00000.jpg", b"y")], method=zipfile.ZIP_DEFLATED)
project("upper-case-extension.afinar", [["photos/0/00001.JPG"], ["photos/1/00000.jpg"]],
        [("photos/0/00001.JPG", b"x"), ("photos/1/00000.jpg", b"y")])
project("another-class-folder.afinar", [["photos/1/00000.jpg"], ["photos/1/00001.jpg"]],
        [("photos/1/00000.jpg", b"x"), ("photos/1/00001.jpg", b"y")])
project("head-elsewhere.afinar", [["photos/0/00001.jpg"], ["photos/1/00000.jpg"]],
        two + [("../head.safetensors", b"h")], head="../head.safetensors")
project("too-many-classes.afinar", [[f"photos/{c}/00000.jpg"] for c in range(201)], [])
