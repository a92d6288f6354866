#!/usr/bin/env python
"""Write tiny stand-ins of the datasets as they ship: ``python tools/make_fixture_datasets.py OUT``.

OUT/cityscapes (leftImg8bit/, gtFine/ with labelIds and instanceIds), OUT/VOCdevkit/VOC2012 and
OUT/ADEChallengeData2016: a few generated images each, with the real file naming, palettes and ID
encodings (the same trees the tests build). For trying commands; real numbers need the real data.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from dataset_fixtures import make_ade20k, make_cityscapes, make_voc  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[0])
    out = Path(sys.argv[1])
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out}: exists and is not empty; give a new folder")
    make_cityscapes(out, h=64, w=128, splits=(("train", 6), ("val", 2)))
    make_voc(out, h=48, w=64)
    make_ade20k(out, h=48, w=64)
    print(f"wrote {out}/cityscapes, {out}/VOCdevkit/VOC2012 and {out}/ADEChallengeData2016")
