"""Which photos to match when there are too many to match every pair: image retrieval by
VLAD descriptors of the photos' own SIFT features, with no vocabulary file to download.

COLMAP's answer, vocabulary-tree matching, needs a tree trained on millions of features
(a download of ~100 MB). Here the vocabulary is learned on the photos themselves: k-means on
a sample of their RootSIFT descriptors, then each photo is summed into one VLAD vector (the
residuals of its features to their nearest word, per word; Jegou et al. 2010, with
intra-normalization and signed square roots, Arandjelovic & Zisserman 2013), and each photo is
paired with the photos whose vectors are nearest. That finds the pairs that sequential
matching by name misses: unordered photos, and the end of a walk around an object meeting
its start (loop closure).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

WORDS = 64
"""Visual words of the vocabulary (k-means centres)."""
SAMPLE_PER_IMAGE = 400
"""Descriptors of each photo that the vocabulary is learned from."""
KMEANS_ITERATIONS = 20


def root_sift(descriptors: Tensor) -> Tensor:
    """RootSIFT [n,128] float: L1-normalized, then square-rooted (Hellinger kernel)."""
    d = descriptors.float()
    return torch.sqrt(d / d.sum(1, keepdim=True).clamp_min(1e-12))


def kmeans(x: Tensor, k: int, iterations: int, gen: torch.Generator) -> Tensor:
    """k centres [k,D] of the rows of `x` [n,D] (Lloyd's algorithm from k distinct random rows;
    an emptied centre takes the row farthest from its own)."""
    k = min(k, len(x))
    centres = x[torch.randperm(len(x), generator=gen)[:k]].clone()
    for _ in range(iterations):
        dist = torch.cdist(x, centres)
        nearest = dist.argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, nearest, x)
        counts = torch.bincount(nearest, minlength=k)
        empty = counts == 0
        centres = torch.where(empty[:, None], centres, sums / counts.clamp_min(1)[:, None])
        if empty.any():
            far = dist.gather(1, nearest[:, None])[:, 0].argsort(descending=True)
            centres[empty] = x[far[:int(empty.sum())]]
    return centres


def vlad(descriptors: Tensor, centres: Tensor) -> Tensor:
    """One photo's VLAD vector [k*D] (unit length) from its RootSIFT descriptors [n,D]."""
    nearest = torch.cdist(descriptors, centres).argmin(1)
    residuals = torch.zeros_like(centres).index_add_(0, nearest, descriptors - centres[nearest])
    residuals = torch.nn.functional.normalize(residuals, dim=1)  # intra-normalization
    v = residuals.flatten()
    v = torch.sign(v) * torch.sqrt(v.abs())
    return torch.nn.functional.normalize(v, dim=0)


def nearest_pairs(vectors: Tensor, neighbours: int) -> list[tuple[int, int]]:
    """Each row's `neighbours` most similar other rows (cosine similarity of unit vectors
    [n,K]), as sorted index pairs (i < j), each once."""
    sim = vectors @ vectors.T
    sim.fill_diagonal_(-np.inf)
    k = min(neighbours, len(vectors) - 1)
    if k <= 0:
        return []
    top = sim.topk(k, dim=1).indices
    pairs = {(min(i, j), max(i, j)) for i in range(len(vectors)) for j in top[i].tolist()}
    return sorted(pairs)


def retrieval_pairs(database: Path, neighbours: int, seed: int = 0) -> list[tuple[str, str]]:
    """Pairs of image names to match: each image of `database` (COLMAP's, with SIFT features)
    with its `neighbours` most similar images by VLAD retrieval (`nearest_pairs`)."""
    from .colmap_steps import import_pycolmap
    pycolmap = import_pycolmap()
    gen = torch.Generator().manual_seed(seed)
    with contextlib.closing(pycolmap.Database.open(database)) as db:
        images = sorted(db.read_all_images(), key=lambda im: im.name)
        descriptors = _Descriptors(db, [im.image_id for im in images])
        pairs = image_pairs(descriptors, neighbours, gen)
    return [(images[i].name, images[j].name) for i, j in pairs]


class _Descriptors(Sequence):
    """The RootSIFT descriptors of a database's images, read one image at a time (all of them
    at once would take 4 MB an image as floats)."""

    def __init__(self, db, image_ids: Sequence[int]):
        self.db, self.image_ids = db, list(image_ids)

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> Tensor:
        data = np.array(self.db.read_descriptors(self.image_ids[i]).data)
        return root_sift(torch.from_numpy(data.reshape(-1, 128)))


def image_pairs(descriptors: Sequence[Tensor], neighbours: int,
                gen: torch.Generator) -> list[tuple[int, int]]:
    """`nearest_pairs` of images given as their RootSIFT descriptors (an image with none is
    paired with nothing): the vocabulary from a sample of each image's, then one VLAD vector
    per image (each image's descriptors are taken twice, one image at a time)."""
    sample, kept = [], []
    for i in range(len(descriptors)):
        d = descriptors[i]
        if len(d):
            kept.append(i)
            sample.append(d[torch.randperm(len(d), generator=gen)[:SAMPLE_PER_IMAGE]])
    if len(kept) < 2:
        return []
    centres = kmeans(torch.cat(sample), WORDS, KMEANS_ITERATIONS, gen)
    vectors = torch.stack([vlad(descriptors[i], centres) for i in kept])
    return [(kept[i], kept[j]) for i, j in nearest_pairs(vectors, neighbours)]


def write_pairs(path: Path, pairs: Sequence[tuple[str, str]]) -> None:
    """COLMAP's match list: one `NAME1 NAME2` line per pair."""
    Path(path).write_text("".join(f"{a} {b}\n" for a, b in pairs))
