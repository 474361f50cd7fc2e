"""`scripts/bench.py`'s config: `--set downscale=F` becomes the config's downscale, which the
case's loader resizes by (the CLI's `--downscale`), the other `--set` values override fields,
bad ones stop with the CLI's errors."""

import pytest

from voxsplat.data.errors import VoxsplatError
from voxsplat.scripts.bench import train_config


def test_set_downscale_resizes_and_other_sets_override():
    cfg = train_config("sparse", 600, ("downscale=0.25", "seed=3", "optim.ssim_weight=0.1"))
    assert cfg.downscale == 0.25 and cfg.seed == 3 and cfg.optim.ssim_weight == 0.1
    assert cfg.optim.steps == 600 and cfg.checkpoint_every == 0
    assert train_config("sparse", None, ()).downscale == 1.0


def test_bad_downscale_and_unknown_fields_stop():
    with pytest.raises(VoxsplatError, match="downscale"):
        train_config("sparse", None, ("downscale=2",))
    with pytest.raises(VoxsplatError, match="no_such_field"):
        train_config("sparse", None, ("optim.no_such_field=1",))
