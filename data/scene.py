"""An immutable multi-view scene: images, cameras, optional masks and points, named splits."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

import torch
from torch import Tensor

from .cameras import Cameras


@dataclass(frozen=True)
class Scene:
    """Images with their cameras. Filters and transforms return a new Scene.

    Attributes:
        images: C uint8 tensors [H,W,3], already composited on `background` when the source
            had alpha. Sizes may differ between images.
        names: C image names (file stems), unique.
        cameras: the C cameras, OpenCV convention, in the (normalized) scene frame.
        masks: None, or C bool tensors [H,W] (True = object / valid pixel).
        depths: None, or C float32 tensors [H,W]: depth the input came with (a depth sensor,
            or an earlier `export --format depth`), camera z in the scene frame's units,
            0 = unknown.
        points: None, or [P,3] float32 points in the scene frame (SfM/MVS/synthetic).
        point_colors: None, or [P,3] float32 colours in [0,1] for `points`.
        splits: split name -> tuple of image indices, e.g. {"train": (...), "test": (...)}.
        world_from_input: [4,4] similarity that maps the input's coordinates to the scene
            frame (identity until `normalize` is applied).
        background: RGB in [0,1] that transparent pixels were composited on.
        source: where the scene came from (path or generator name), for messages.
    """

    images: tuple[Tensor, ...]
    names: tuple[str, ...]
    cameras: Cameras
    masks: Optional[tuple[Tensor, ...]] = None
    depths: Optional[tuple[Tensor, ...]] = None
    points: Optional[Tensor] = None
    point_colors: Optional[Tensor] = None
    splits: dict[str, tuple[int, ...]] = field(default_factory=dict)
    world_from_input: Tensor = field(default_factory=lambda: torch.eye(4, dtype=torch.float64))
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    source: str = ""

    def __post_init__(self) -> None:
        C = len(self.cameras)
        if len(self.images) != C or len(self.names) != C:
            raise ValueError(f"Scene: {len(self.images)} images, {len(self.names)} names, {C} cameras")
        if self.masks is not None and len(self.masks) != C:
            raise ValueError("Scene: one mask per image")
        if self.depths is not None and (len(self.depths) != C or any(
                tuple(d.shape) != tuple(img.shape[:2]) for d, img in zip(self.depths, self.images))):
            raise ValueError("Scene: one depth map per image, of its size")
        for i, img in enumerate(self.images):
            H, W = int(img.shape[0]), int(img.shape[1])
            if (W, H) != self.cameras.size(i):
                raise ValueError(f"Scene: image {self.names[i]} is {W}x{H} but its camera says "
                                 f"{self.cameras.size(i)}")

    def __len__(self) -> int:
        return len(self.images)

    def image(self, i: int) -> Tensor:
        """Image i as float32 [H,W,3] in [0,1]."""
        return self.images[i].float() / 255.0

    def masked(self, views: str | Sequence[int] = "train") -> bool:
        """Whether some view of `views` (a split's name, every view where the scene has no
        such split, or indices) has a mask with a background (False) pixel: masks that are
        all white say nothing, and decide no mode (depth, schedule, sky)."""
        if self.masks is None:
            return False
        if isinstance(views, str):
            views = self.split(views) if views == "all" or views in self.splits else range(len(self))
        return any(not bool(self.masks[i].all()) for i in views)

    def split(self, name: str) -> tuple[int, ...]:
        """Indices of split `name`; "all" is every image."""
        if name == "all":
            return tuple(range(len(self)))
        if name not in self.splits:
            raise KeyError(f"scene has no split '{name}' (has: {sorted(self.splits)})")
        return self.splits[name]

    def subset(self, indices: Sequence[int]) -> "Scene":
        """A scene with only the given images; splits are re-indexed, emptied ones dropped."""
        indices = list(indices)
        remap = {old: new for new, old in enumerate(indices)}
        splits = {k: tuple(remap[i] for i in v if i in remap) for k, v in self.splits.items()}
        return replace(
            self,
            images=tuple(self.images[i] for i in indices),
            names=tuple(self.names[i] for i in indices),
            cameras=self.cameras[indices],
            masks=None if self.masks is None else tuple(self.masks[i] for i in indices),
            depths=None if self.depths is None else tuple(self.depths[i] for i in indices),
            splits={k: v for k, v in splits.items() if v},
        )

    def with_splits(self, splits: dict[str, Sequence[int]]) -> "Scene":
        return replace(self, splits={k: tuple(int(i) for i in v) for k, v in splits.items()})
