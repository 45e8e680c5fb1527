"""Opens a head file with Python's safetensors (for tests/cli.rs): prints its tensor names and
shapes and its metadata as one JSON object.

    python read_head.py HEAD.safetensors
"""
import json
import sys

from safetensors import safe_open

with safe_open(sys.argv[1], framework="np") as head:
    print(json.dumps({
        "tensors": {name: list(head.get_tensor(name).shape) for name in head.keys()},
        "metadata": head.metadata(),
    }))
