"""Helpers shared by test modules (importable because pytest puts tests/ on sys.path)."""

import pytest

from voxsplat.data.errors import VoxsplatError


def error_message(fn, *args, **kwargs) -> str:
    """The VoxsplatError message `fn(*args, **kwargs)` raises; asserts it is one line."""
    with pytest.raises(VoxsplatError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def fit_cut_and_resumed(scene, cfg, tmp_path, cut_at: int):
    """(the run uninterrupted, the same run stopped after step `cut_at` and resumed from its
    last checkpoint, the checkpoint files the stopped run left), the runs as TrainResults, on
    the CPU in tmp_path/full and tmp_path/cut."""
    import torch

    from voxsplat.recon.engine import Trainer

    full = Trainer(scene, cfg, tmp_path / "full", torch.device("cpu")).fit(progress=False)

    def interrupt(step, _):
        if step == cut_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(scene, cfg, tmp_path / "cut", torch.device("cpu")).fit(progress=False, on_step=interrupt)
    left = sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir())
    resumed = Trainer(scene, cfg, tmp_path / "cut", torch.device("cpu")).fit(resume=True, progress=False)
    return full, resumed, left
