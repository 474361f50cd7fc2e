"""Lego's 8 protocol training views and 5 test views as a capture folder of their own (what a
user would point `voxsplat reconstruct` at): python3 bench/stage_lego8.py DATA_ROOT OUT."""

import json
import shutil
import sys
from pathlib import Path

from voxsplat.scripts.bench_fewview import LEGO_8VIEW_TRAIN

TEST_VIEWS = ("r_0", "r_40", "r_80", "r_120", "r_160")

src = Path(sys.argv[1]) / "nerf_synthetic_lego_400"
dst = Path(sys.argv[2])
shutil.rmtree(dst, ignore_errors=True)
for split, keep in (("train", LEGO_8VIEW_TRAIN), ("test", TEST_VIEWS)):
    t = json.load(open(src / f"transforms_{split}.json"))
    t["frames"] = [f for f in t["frames"] if Path(f["file_path"]).name in keep]
    (dst / split).mkdir(parents=True)
    for f in t["frames"]:
        shutil.copy(src / (f["file_path"] + ".png"), dst / (f["file_path"] + ".png"))
    json.dump(t, open(dst / f"transforms_{split}.json", "w"), indent=1)
print("views", len(list((dst / "train").glob("*.png"))), len(list((dst / "test").glob("*.png"))))
