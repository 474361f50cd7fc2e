"""`voxsplat eval --renders DIR`: each evaluated view's render (NAME.png) and photo
(NAME_gt.png), written to a hidden folder that replaces DIR once every view is in."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from ..data.atomic import check_replaceable, mark_output, replace_folder, temp_folder_beside


def render_stems(names: Sequence[str]) -> list[str]:
    """Each view's file stem in a renders folder (NAME.png, NAME_gt.png): its name with '/'
    as '_', and where two views' files would be the same file (`a/b` and `a_b`; `cam`'s photo
    and the view `cam_gt`), the view's index appended to each of them."""
    stems = [n.replace("/", "_").replace("\\", "_") for n in names]
    while True:
        owners: dict[str, set[int]] = {}
        for i, stem in enumerate(stems):
            for file in (stem, f"{stem}_gt"):
                owners.setdefault(file, set()).add(i)
        clash = sorted({i for ids in owners.values() if len(ids) > 1 for i in ids})
        if not clash:
            return stems
        for i in clash:
            stems[i] = f"{stems[i]}_{i}"


class RenderFolder:
    """Renders and photos of evaluated views, written to a hidden folder that replaces
    `folder` once every view is in (never a half-written folder)."""

    def __init__(self, folder: Path, names: Sequence[str]):
        check_replaceable(folder)
        self.folder, self.names = folder, names
        self.tmp = temp_folder_beside(folder)
        mark_output(self.tmp, "evaluated views' renders and photos")
        self.stems = render_stems(names)

    def __call__(self, i: int, render, gt) -> None:
        from PIL import Image
        stem = self.stems[i]
        for suffix, img in (("", render), ("_gt", gt)):
            array = (img.clamp(0, 1) * 255).round().byte().cpu().numpy()
            Image.fromarray(array).save(self.tmp / f"{stem}{suffix}.png")

    def finish(self) -> None:
        replace_folder(self.tmp, self.folder)

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
