"""What a fresh run may replace in its `--out` folder, and how it replaces it: the checks
before any work (`check_fresh_out`), and a finished run's products set aside in `previous/`
until the new run's are written (`set_aside_outputs`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from ..data.errors import VoxsplatError
from .checkpoint import latest_checkpoint
from .sky import SKY_PT
from . import workspace as wsp


EVAL_METRICS = tuple(f"metrics{split}{masked}.json" for split in ("", "_train", "_test")
                     for masked in ("", "_masked"))[1:]
"""What `voxsplat eval` writes beside metrics.json (another split's figures, masked ones)."""
PRODUCTS = (wsp.SPLATS_PLY, wsp.SPLATS_SPLAT, wsp.METRICS_JSON, "points.ply", SKY_PT, "depth",
            *EVAL_METRICS)
"""What a fresh run sets aside (`set_aside_outputs`) or removes (`clean_outputs`) before it
starts: the earlier run's, whose figures (eval's included) are not of the new Gaussians."""
SFM_REPORT = Path("sfm") / "sfm.json"
"""The report of a workspace's SfM run (`sfm.run.REPORT_FILE`), which names it."""
KEPT_SFM_REPORT = "sfm.json"
"""Its copy in previous/, made as a finished run is set aside (`previous_sfm_home`)."""


def clean_outputs(out: Path) -> None:
    """Remove a workspace's products (not its checkpoints) before a fresh run."""
    for name in PRODUCTS:
        path = Path(out) / name
        if path.is_dir():
            remove_tree(path)
        else:
            path.unlink(missing_ok=True)


def sfm_report(out: Path) -> Optional[bytes]:
    """The report of the SfM run in workspace `out` (None: none), read before a fresh run may
    replace it, for `set_aside_outputs`."""
    try:
        return (Path(out) / SFM_REPORT).read_bytes()
    except OSError:
        return None


def set_aside_outputs(out: Path, sfm_report: Optional[bytes] = None) -> None:
    """Before a fresh run: move a finished run's products (with a copy of its scene.json, which
    the new run rewrites, and `sfm_report`: that of the SfM run it was trained on, read before
    the new run's SfM) into `out/previous/`, so that a run stopped by Ctrl-C or an error
    loses nothing; `reconstruct` removes them once its own are written. Without a finished run
    (no splats.ply), any partial products go, and a `previous/` kept by an earlier stopped run
    stays (`kept_previous` finds it)."""
    out = Path(out)
    kept = out / wsp.PREVIOUS
    if (out / wsp.SPLATS_PLY).is_file():
        remove_tree(kept)
        kept.mkdir()
        if (out / wsp.SCENE_JSON).is_file():
            shutil.copy2(out / wsp.SCENE_JSON, kept / wsp.SCENE_JSON)
        if sfm_report is not None:  # which SfM run its poses are (`previous_sfm_home`)
            (kept / KEPT_SFM_REPORT).write_bytes(sfm_report)
        for name in sorted(PRODUCTS, key=lambda name: name == wsp.SPLATS_PLY):  # splats.ply last:
            if (out / name).exists():  # a move cut short leaves the finished run in place
                (out / name).rename(kept / name)
    else:
        clean_outputs(out)


def kept_previous(out: Path) -> Optional[Path]:
    """The earlier reconstruction a stopped fresh run set aside in `out` (`set_aside_outputs`),
    or None."""
    out = Path(out)
    kept = out / wsp.PREVIOUS
    finished = (out / wsp.SPLATS_PLY).is_file()
    return kept if (kept / wsp.SPLATS_PLY).is_file() and not finished else None


def previous_sfm_home(ws: Path) -> Path:
    """Where the SfM run (`sfm/`) of workspace `ws`'s poses lives: `ws` itself, except for the
    earlier reconstruction a stopped fresh run set aside in OUT/previous/, whose SfM run stays
    in OUT: OUT, while that is still the run it was trained on (the photos are reloaded from
    it to evaluate or mesh it).

    Raises:
        VoxsplatError: the stopped run replaced OUT's SfM run (other SfM settings, or photos
            that changed).
    """
    ws = Path(ws)
    kept, current = ws / KEPT_SFM_REPORT, ws.parent / SFM_REPORT
    if ws.name != wsp.PREVIOUS or (ws / "sfm").exists() or not kept.is_file():
        return ws  # (no SfM run: a posed input; or set aside by an older voxsplat)
    if not current.is_file() or current.read_bytes() != kept.read_bytes():
        raise VoxsplatError(f"{ws}: the structure-from-motion run its Gaussians were trained on "
                            f"was replaced in {ws.parent / 'sfm'} by the run stopped since, so "
                            f"its photos cannot be reloaded to compare with; it still renders and "
                            f"exports its Gaussians (render, export --format ply/splat), or "
                            f"finish the new run with --resume")
    return ws.parent


def check_fresh_out(out: Path, input_path: Path, replaced=PRODUCTS) -> Optional[str]:
    """Whether a fresh run of `input_path` may replace what `out` holds; a note to print, if any.
    `replaced`: the names the run removes from `out` (`PRODUCTS` for `reconstruct`, none for
    `poses`, which writes only `sfm/`).

    Raises:
        VoxsplatError: `out` is a file, or the input's own folder; or `out` is the workspace of
            another input (its splats, or the SfM model its photos reload through, would be
            lost); or `out` is no workspace but holds files of the `replaced` names (e.g. an
            RGB-D dataset's depth/), which are not ours to delete.
    """
    out, input_path = Path(out).resolve(), Path(input_path).resolve()
    if out.exists() and not out.is_dir():
        raise VoxsplatError(f"--out {out} is a file; a workspace is a folder: give a new or empty "
                            f"folder's path")
    above = next((p for p in out.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise VoxsplatError(f"--out {out}: {above} is a file, so no folder can be made in it; "
                            f"give a path under a folder")
    home = input_path if input_path.is_dir() or not input_path.exists() else input_path.parent
    if out == home:
        raise VoxsplatError(f"--out {out} is the input's own folder: the workspace's files (depth/, "
                            f"sfm/, splats.ply, ...) would mix with the input's; give a folder of "
                            f"its own, e.g. --out {out.parent / (out.name + '_ws')}")
    scene_json = out / wsp.SCENE_JSON
    if scene_json.is_file():
        rec = wsp.read_json(scene_json)
        before = Path(rec.get("input", {}).get("path", ""))
        if before != input_path:
            raise VoxsplatError(f"--out {out} holds the reconstruction of another input ({before}); "
                                f"choose another --out, or delete {out} to replace it")
        if (out / wsp.SPLATS_PLY).is_file():
            return (f"{out}: replacing its earlier reconstruction of the same input (kept in "
                    f"{out / wsp.PREVIOUS} until this run finishes)")
        kept = kept_previous(out)  # set aside by a fresh run that stopped
        kept = f"; the last finished one stays in {kept} until this run finishes" if kept else ""
        if latest_checkpoint(out / "checkpoints") is not None:
            return (f"{out}: starting over; the unfinished run's checkpoints are discarded "
                    f"(--resume continues it instead){kept}")
        return f"{out}: starting over{kept}" if kept else None
    from .sfm import recorded_source
    posed = recorded_source(out)
    posed = posed.resolve() if posed is not None else None
    if posed is not None and not (posed == input_path or posed in input_path.parents
                                  or input_path in posed.parents or out in input_path.parents):
        raise VoxsplatError(f"--out {out} holds the poses (sfm/) of another input ({posed}); "
                            f"choose another --out, or delete {out / 'sfm'} to replace them")
    from ..data.images import list_images
    photos = list_images(out) if out.is_dir() else []
    if photos:
        raise VoxsplatError(f"--out {out} holds photos ({photos[0].name}, ...), which the "
                            f"workspace's files would mix with; give a folder of its own, e.g. "
                            f"--out {out.parent / (out.name + '_ws')}")
    theirs = [name for name in replaced if (out / name).exists()]
    if theirs:
        raise VoxsplatError(f"--out {out} is not a voxsplat workspace but holds {', '.join(theirs)}, "
                            f"which a reconstruction would replace; choose a new or empty folder")
    from .checkpoint import foreign_files
    mine = [f"checkpoints/ ({', '.join(names[:3])})"
            for names in [foreign_files(out / "checkpoints")] if names and replaced]
    sfm = out / "sfm"
    if posed is None and sfm.is_dir() and any(sfm.iterdir()):  # (ours always has sfm.json)
        mine.append("sfm/")
    if mine:
        raise VoxsplatError(f"--out {out} is not a voxsplat workspace but holds {' and '.join(mine)} "
                            f"of files voxsplat did not write, which a run would replace; choose "
                            f"a new or empty folder")
    return None


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
