"""Retrieval matching (`recon/sfm/retrieval.py`): which photos to match when there are too many
for every pair. The VLAD retrieval on synthetic descriptors, then SfM of the corner scene
(`sfm_scene.py`) under shuffled names, where sequential matching pairs the wrong photos."""

from __future__ import annotations

import json
import random

import numpy as np
import torch

from voxsplat.recon.sfm import SfmConfig, run_sfm
from voxsplat.recon.sfm import colmap_steps as sfm_steps
from voxsplat.recon.sfm.evaluate import pose_errors
from voxsplat.recon.sfm.inputs import choose_matcher
from voxsplat.recon.sfm.retrieval import image_pairs, kmeans, nearest_pairs, root_sift, vlad
from sfm_scene import FAST, render_corner
from testkit import need_pycolmap


def _ring_images(n: int, gen: torch.Generator) -> list[torch.Tensor]:
    """RootSIFT descriptors of `n` photos around a loop: photo i sees patches i and i+1 (mod n)
    of `n` patches of 150 distinct features each, through noise, plus 100 features of its own."""
    patches = [torch.rand(150, 128, generator=gen) * 255 for _ in range(n)]
    images = []
    for i in range(n):
        seen = torch.cat([patches[i], patches[(i + 1) % n]])
        seen = (seen + 8 * torch.randn(seen.shape, generator=gen)).clamp(0, 255)
        own = torch.rand(100, 128, generator=gen) * 255
        images.append(root_sift(torch.cat([seen, own])[torch.randperm(400, generator=gen)]))
    return images


def test_retrieval_pairs_photos_that_share_content_around_a_loop():
    """Each photo's 2 nearest by VLAD are the two that share a patch with it, the last with
    the first included (a loop that sequential matching by name would not close)."""
    gen = torch.Generator().manual_seed(0)
    images = _ring_images(8, gen)
    order = list(range(8))
    random.Random(1).shuffle(order)  # unordered, as photos under arbitrary names
    pairs = image_pairs([images[i] for i in order], 2, gen)
    found = {tuple(sorted((order[a], order[b]))) for a, b in pairs}
    assert found == {tuple(sorted((i, (i + 1) % 8))) for i in range(8)}
    assert all(a < b for a, b in pairs)


def test_vlad_parts():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = torch.cat([c + 0.1 * torch.randn(50, 2, generator=gen) for c in centres])
    found = kmeans(x, 3, 20, gen)
    assert torch.cdist(found, centres).amin(0).max() < 0.1  # every true centre is found
    v = vlad(x[:50], centres)
    assert v.shape == (6,) and torch.isclose(v.norm(), torch.tensor(1.0))
    assert v[2:].abs().max() == 0  # features near only the first centre
    vectors = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), dim=1)
    assert nearest_pairs(vectors, 1) == [(0, 1), (1, 2)]  # 2's nearest is 1
    assert nearest_pairs(vectors[:1], 3) == []
    assert image_pairs([root_sift(torch.rand(5, 128)), torch.zeros(0, 128)], 3, gen) == []


def test_auto_matches_many_photos_by_retrieval():
    config = SfmConfig(exhaustive_max_images=10)
    assert choose_matcher(config, 10, from_video=False) == "exhaustive"
    assert choose_matcher(config, 11, from_video=False) == "retrieval"
    assert choose_matcher(config, 11, from_video=True) == "sequential"
    assert choose_matcher(SfmConfig(matcher="retrieval"), 3, from_video=True) == "retrieval"


def test_cli_offers_every_matcher():
    from voxsplat.recon.sfm.config import MATCHERS
    from voxsplat.scripts import cli
    assert tuple(cli.MATCHERS) == MATCHERS


def test_shuffled_photos_register_by_retrieval_and_keep_their_names(tmp_path):
    """10 photos of the corner scene under shuffled names, one with a space (which COLMAP's
    pair list cannot hold). Retrieval matching (2 neighbours by name, plus each photo's 2 most
    similar) matches every photo with the photos beside it on the camera arc, which the
    neighbours by name are not; it registers all 10 at the right poses, reports its matching
    to 100%, and leaves the photos' names and no file of its own."""
    need_pycolmap()
    folder = tmp_path / "photos"
    poses = render_corner(tmp_path / "render", 10)
    order = list(range(10))
    random.Random(3).shuffle(order)  # (a shuffle whose neighbours by name miss many)
    names = {}
    for k, i in enumerate(order):
        names[i] = f"shot {k:02d}" if k == 3 else f"{k:02d}"
        folder.mkdir(exist_ok=True)
        (tmp_path / "render" / f"{i:02d}.png").rename(folder / f"{names[i]}.png")
    config = SfmConfig(**{**FAST.to_dict(), "sequential_overlap": 2, "retrieval_neighbours": 2,
                          "guided_matching": "no"})

    calls = []
    scene = run_sfm(folder, tmp_path / "ret", SfmConfig(**{**config.to_dict(), "matcher": "retrieval"}),
                    progress=lambda stage, done, total: calls.append((stage, done, total)))
    assert sorted(scene.names) == sorted(names.values())
    by_name = {n: i for i, n in names.items()}
    err = pose_errors(scene.cameras.cam_from_world.double().numpy(),
                      poses[[by_name[n] for n in scene.names]])
    assert err["rot_err_max_deg"] < 1.0 and err["center_err_frac"] < 0.01, err
    matching = [c for c in calls if c[0] == "matching"]
    assert matching[-1][1:] == (100, 100) and any(0 < d < 100 for _, d, _ in matching), matching
    pycolmap = sfm_steps.import_pycolmap()
    db = pycolmap.Database.open(tmp_path / "ret" / "sfm" / "database.db")
    ids = {im.image_id: by_name[im.name[:-4]] for im in db.read_all_images()}
    pair_ids, geometries = db.read_two_view_geometries()
    db.close()
    matched = {tuple(sorted(ids[i] for i in pycolmap.pair_id_to_image_pair(int(p))))
               for p, g in zip(pair_ids, geometries) if len(g.inlier_matches) >= 15}
    by_names = {tuple(sorted((order[k], order[k + d]))) for k in range(10) for d in (1, 2) if k + d < 10}
    centres = np.linalg.inv(poses)[:, :3, 3]
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(10) * 1e9
    nearest = {i: [tuple(sorted((i, int(j)))) for j in np.argsort(dist[i])[:2]] for i in range(10)}

    def lonely(pairs):  # photos matched with neither of the two cameras nearest to theirs
        return [i for i in range(10) if not set(nearest[i]) & pairs]
    assert len(lonely(by_names)) >= 4  # (what the neighbours by name alone would leave)
    assert lonely(matched) == [], lonely(matched)
    report = json.loads((tmp_path / "ret" / "sfm" / "sfm.json").read_text())
    assert report["matcher"] == "retrieval"
    left = {p.name for p in (tmp_path / "ret" / "sfm").iterdir()}
    assert not left & {sfm_steps._RENAMED, "retrieval_pairs.txt"}, left

    # a run stopped while the names were changed: the next matching gives them back
    database = tmp_path / "ret" / "sfm" / "database.db"
    db = pycolmap.Database.open(database)
    image = db.read_image_with_name("shot 03.png")
    image.name = "voxsplat_image_7"
    db.update_image(image)
    db.close()
    (database.parent / sfm_steps._RENAMED).write_text(json.dumps({"voxsplat_image_7": "shot 03.png"}))
    sfm_steps.restore_names(database)
    db = pycolmap.Database.open(database)
    assert db.read_image_with_name("shot 03.png") is not None
    db.close()
    assert not (database.parent / sfm_steps._RENAMED).exists()
