#!/usr/bin/env python
"""Compare models on small objects: ``python tools/compare.py CONFIG... [--preset small-objects] [--seeds N] ...``.

Same as ``segdil compare``; the pipeline reads top to bottom in segdil/compare/__init__.py.
"""

from segdil.commands.compare import command

if __name__ == "__main__":
    command()
