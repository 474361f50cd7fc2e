"""Fixtures shared by all test packages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real scenes in `<repo>/../shared/data` (or $VOXSPLAT_SHARED_DATA); skips if absent."""
    path = Path(os.environ.get("VOXSPLAT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}: these tests need the real scenes in "
                    f"../shared/data")
    return path


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory) -> Path:
    """The output folder of one `voxsplat demo --device cpu` run (~3-4 min), shared by the session."""
    from voxsplat.scripts.cli import main
    out = tmp_path_factory.mktemp("demo") / "demo"
    code = main(["demo", "--out", str(out), "--device", "cpu", "--quiet"])
    assert code == 0, f"voxsplat demo exited with {code}"
    return out
