"""The training loop behind ``tools/train.py`` and ``segdil train``."""
