"""Runs a .tflite classifier in LiteRT over preprocessed inputs (for tests/cli.rs).

    python litert_classify.py MODEL INPUTS OUT

INPUTS: N x 224 x 224 x 3 in the model's input type: float32 little-endian (already scaled)
or uint8 pixels; OUT: float32, N x classes.
"""
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter

model, inputs, out = sys.argv[1:4]
interpreter = Interpreter(model_path=model)
interpreter.allocate_tensors()
source = interpreter.get_input_details()[0]
target = interpreter.get_output_details()[0]["index"]
dtype = "<f4" if source["dtype"] == np.float32 else source["dtype"]
images = np.fromfile(inputs, dtype=dtype).reshape(-1, 224, 224, 3)
rows = []
for image in images:
    interpreter.set_tensor(source["index"], image[None])
    interpreter.invoke()
    rows.append(interpreter.get_tensor(target)[0].copy())
np.asarray(rows, dtype="<f4").tofile(out)
