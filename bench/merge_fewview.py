"""Join a `--models voxel` JSON and a `--models gaussians` JSON of the same case (each run
alone on the GPU, e.g. sequentially in one device call) into the one file run_fewview_case
writes with both models.

    python bench/merge_fewview.py VOXEL.json GAUSSIANS.json OUT.json
"""

import json
import sys


def merge(voxel: dict, base: dict) -> dict:
    if voxel["case"] != base["case"] or voxel["gpu"] != base["gpu"]:
        raise SystemExit("different cases or machines: not one protocol run")
    out = dict(voxel)
    out["baseline"] = base["baseline"]
    out["baseline_config"] = base["baseline_config"]
    out["baseline_psnr"] = base["baseline"]["psnr"]
    out["delta_psnr"] = voxel["voxel"]["psnr"] - base["baseline"]["psnr"]
    return out


if __name__ == "__main__":
    v, b, o = sys.argv[1:4]
    merged = merge(json.load(open(v)), json.load(open(b)))
    with open(o, "w") as f:
        f.write(json.dumps(merged, indent=1) + "\n")
    print(o, merged["psnr"], merged["baseline_psnr"])
