#!/usr/bin/env python3
"""Writes the hand-made hostile files of this folder (project files and head files that must be
refused with a message, in bounded memory and time). `tests/hostile_files.rs` replays every file
here, and what fuzzing finds is added beside them (fuzz/README in the project's README).

Run from anywhere: python3 tests/hostile/make.py
"""
import json
import os
import struct
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


def head(name, classes, tensors, unfrozen_blocks=0):
    """A safetensors file that says it is an Afinar head, with zero-filled float32 tensors."""
    header, data = {}, b""
    for tensor, shape in tensors:
        size = 4
        for d in shape:
            size *= d
        header[tensor] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + size]}
        data += bytes(size)
    metadata = {"classes": classes, "base_model_sha256": "crafted", "preprocessing": "crafted",
                "unfrozen_blocks": unfrozen_blocks}
    header["__metadata__"] = {"format": "afinar-head-1", "metadata": json.dumps(metadata)}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    os.makedirs(os.path.join(HERE, "head"), exist_ok=True)
    with open(os.path.join(HERE, "head", name), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


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
project("too-many-classes.afinar", [[f"photos/{c}/00000.jpg"] for c in range(21)], [])

head("too-many-classes.safetensors", [f"class {i}" for i in range(1000)], [("hidden.bias", [128])])
head("hidden-without-units.safetensors", ["a", "b"], [("hidden.bias", [0])])
head("shapes-disagree.safetensors", ["a", "b", "c"],
      [("hidden.weight", [1280, 8]), ("hidden.bias", [8]), ("output.weight", [8, 2]), ("output.bias", [3])])
head("unfreezes-40-blocks.safetensors", ["a", "b"], [("hidden.bias", [8])], unfrozen_blocks=40)
