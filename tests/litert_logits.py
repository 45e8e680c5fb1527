"""Runs a quantized MobileNetV2 .tflite in LiteRT and writes the classifier's 8-bit logits
(for tests/parity.rs), as uint8: an int8 tensor's q + 128.

    python litert_logits.py MODEL INPUTS OUT

INPUTS: N x 224 x 224 x 3 uint8 pixels; OUT: N x classes bytes.
"""
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter

model, inputs, out = sys.argv[1:4]
interpreter = Interpreter(model_path=model, experimental_preserve_all_tensors=True)
interpreter.allocate_tensors()
source = interpreter.get_input_details()[0]
# The classifier is the graph's last convolution (or dense layer): its output, before the
# reshape and the softmax.
ops = interpreter._get_ops_details()
last = [op for op in ops if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")][-1]
logits = last["outputs"][0]
images = np.fromfile(inputs, dtype=np.uint8).reshape(-1, 224, 224, 3)
rows = []
for image in images:
    interpreter.set_tensor(source["index"], image[None].astype(source["dtype"]))
    interpreter.invoke()
    values = interpreter.get_tensor(logits).reshape(-1)
    if values.dtype == np.int8:
        values = (values.astype(np.int16) + 128).astype(np.uint8)
    rows.append(values.astype(np.uint8))
np.asarray(rows, dtype=np.uint8).tofile(out)
