"""Prediction: tiling, ``segdil predict`` over files, ONNX export, BatchNorm folding."""
