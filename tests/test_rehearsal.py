"""The full profile's rehearsal: fixtures the real readers accept, weights where the loaders look, a safe folder."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from slics.rehearsal import fixtures, run, weights

# `make test` rehearses stage 07 with clip-rn50 as its target: its maps need 520 images, and ViT-L/14
# takes about 1 s an image on 2 cores (the full profile's target is tested on its own below).
REHEARSAL = ("--target-backbone", "clip-rn50")


def test_full_profile_rehearsal_runs_every_stage(request):
    """Every stage of dvc.yaml in profile `full` at tiny scale, offline (``python -m slics.rehearsal``).
    First in this module, so that under pytest-xdist its worker starts it before anything else."""
    import subprocess
    import sys

    if not request.config.getoption("--rehearse-full"):
        pytest.skip("the rehearsal runs with --rehearse-full (make test; by hand: make rehearse-full)")
    proc = subprocess.run([sys.executable, "-m", "slics.rehearsal", *REHEARSAL], capture_output=True, text=True)
    print(proc.stdout)          # the stages' report, kept with the test's outcome (the JUnit report too)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.stdout.splitlines()[-1].startswith("rehearsal of the full profile passed")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    mirror = tmp_path_factory.mktemp("mirror")
    sizes = fixtures.FixtureSizes(flickr30k={"train": 4, "val": 2, "test_2016": 2})
    sums, expected = fixtures.write_fixtures(mirror, mirror / "images", sizes)
    return mirror, sizes, sums, expected


def test_fixtures_pass_the_real_readers(written):
    from slics.data.cifar import CIFAR10_CLASSES, read_cifar10_test
    from slics.data.coco import read_instances
    from slics.data.images import ZipImages
    from slics.data.mirflickr import FILES, read_mirflickr25k

    mirror, sizes, sums, expected = written
    images, labels, classes = read_cifar10_test(mirror / "cifar10")
    assert images.shape == (20, 32, 32, 3) and tuple(classes) == CIFAR10_CLASSES
    assert np.bincount(labels).tolist() == [2] * 10
    mir = read_mirflickr25k([mirror / f for f in FILES])
    assert len(mir) == expected["mirflickr25k_images"] == sizes.mirflickr25k
    assert mir.general.any(axis=0).all() and mir.general.any(axis=1).all()     # every concept, every image
    first = ZipImages(mirror / "mirflickr25k/mirflickr25k.zip", mir.image_ids)[0]
    assert first.size == (48, 48)
    with zipfile.ZipFile(mirror / "coco/annotations_trainval2017.zip") as zf:
        coco = read_instances(json.loads(zf.read("annotations/instances_train2017.json")))
    assert len(coco) == sizes.coco and coco.general.any(axis=0).all()
    assert len(ZipImages(mirror / "coco/train2017.zip", coco.image_ids)) == sizes.coco
    assert expected["flickr30k_images"] == 8 and len(list((mirror / "images").glob("*.jpg"))) == 8
    from slics.data.concepts import read_captions

    assert len(read_captions([mirror / "flickr30k/train.1.en.gz"])) == 4
    assert set(sums) >= {"mirflickr25k/mirflickr25k.zip", "coco/train2017.zip", "flickr30k/val_images.txt"}


def test_cifar_md5_check_runs_on_the_fixtures_through_a_scratch_registry(written, tmp_path, monkeypatch):
    import yaml

    from slics.data import cifar

    mirror, _, _, expected = written
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump({"_expected": {"cifar10_md5": expected["cifar10_md5"]}}))
    monkeypatch.setenv("SLICS_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("SLICS_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(cifar.CifarUnavailableError, match="md5"):       # the real sums reject fixtures
        cifar.ensure_cifar10(offline=True)
    monkeypatch.setenv("SLICS_RESOURCES", str(registry))
    for f in (tmp_path / "data").rglob("*"):
        f.unlink() if f.is_file() else None
    assert cifar.ensure_cifar10(offline=True) == tmp_path / "data" / "external" / "cifar10"


def test_weights_are_found_where_the_loaders_look(tmp_path, monkeypatch):
    import torch
    from huggingface_hub import try_to_load_from_cache

    path = weights.write_hub_file(tmp_path, "org/model", "model.safetensors", {"w": torch.ones(2, 3)})
    found = try_to_load_from_cache("org/model", "model.safetensors", cache_dir=str(tmp_path))
    assert found == str(path)
    from safetensors.torch import load_file

    assert load_file(found)["w"].dtype == torch.float16


def test_workdir_must_be_scratch(tmp_path):
    from slics.utils.config import project_root

    for inside in (project_root() / "data" / "rehearsal", project_root() / "results"):
        with pytest.raises(run.RehearsalError, match="outside the project"):
            run.check_workdir(inside)
    (tmp_path / "mine.txt").write_text("x")
    with pytest.raises(run.RehearsalError, match="not empty"):
        run.check_workdir(tmp_path)
    (tmp_path / run.MARKER).write_text("")
    assert run.check_workdir(tmp_path) == tmp_path.resolve()


def test_tiny_params_are_valid_full_profile():
    import yaml

    from slics.utils.config import project_root
    from slics.utils.schema import problems

    params = run.tiny_params(yaml.safe_load((project_root() / "params.yaml").read_text()))
    assert params["profile"] == "full" and problems(params) == []


# The full profile's target of stage 07 (ViT-L/14), rehearsed on its own: random weights written where
# the loader looks, found offline, loaded and run on fixture JPEGs (a full batch of 2 and a last one of
# 1: ViT-L/14 costs about 2 s an image on one core).
L14_IMAGES = 3
_L14_PROBE = """
import json, sys
from pathlib import Path
from PIL import Image
from slics.embedding.cache import weights_tag
from slics.embedding.encoders import check_clip_available
from slics.embedding.registry import get_spec, load_backbone

spec = get_spec("clip-vit-l14")
check_clip_available(spec.name)
images = [Image.open(p).convert("RGB") for p in sorted(Path(sys.argv[1]).glob("*.jpg"))[:int(sys.argv[2])]]
X = load_backbone(spec.name).encode_images(images, batch_size=2, progress=False)
print(json.dumps({"shape": list(X.shape), "norms": [float(v) for v in (X ** 2).sum(axis=1)],
                  "dim": spec.dim, "tag": weights_tag(spec.weights_file())}))
"""


@pytest.mark.slow
def test_stage_07_target_vit_l14_loads_random_weights_offline_and_encodes_images(written, tmp_path):
    import os
    import subprocess
    import sys

    from slics.embedding.registry import get_spec

    mirror = written[0]
    spec = get_spec("clip-vit-l14")
    path = weights.WRITERS[spec.loader](tmp_path / "hub", spec)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HOME": str(tmp_path / "hf_home"),
           "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", _L14_PROBE, str(mirror / "images"), str(L14_IMAGES)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["shape"] == [L14_IMAGES, 768] == [L14_IMAGES, got["dim"]]
    np.testing.assert_allclose(got["norms"], 1.0, rtol=1e-9)
    assert got["tag"] is not None and got["tag"].endswith(f":{path.stat().st_size}")


def test_rehearsal_target_backbone_replaces_stage_07_target_and_its_expected_caches():
    import yaml

    from slics.utils.config import project_root
    from slics.utils.schema import problems

    params = yaml.safe_load((project_root() / "params.yaml").read_text())
    assert run.tiny_params(params)["image_to_prompt"]["full"]["target_backbone"] == "clip-vit-l14"
    tiny = run.tiny_params(params, target_backbone="clip-rn50")
    assert tiny["image_to_prompt"]["full"]["target_backbone"] == "clip-rn50" and problems(tiny) == []
    assert "clip-vit-l14" not in weights.full_backbones(tiny)            # no 0.9 GB of weights written for nothing
    outs = run.full_only("07_image_to_prompt", tiny)
    assert "data/embeddings/clip-rn50/flickr30k/images.npy" in outs
    assert "data/embeddings/clip-vit-b32/flickr30k/images.manifest.json" in outs


def test_backbone_stages_rehearse_one_dataset_each_and_expect_only_its_outputs():
    """Sections 4.4.1 and 4.4.2 rehearse one dataset each (together both); the expected figures and
    caches follow the stage's own datasets."""
    import yaml

    from slics.utils.config import project_root
    from slics.utils.schema import problems

    params = yaml.safe_load((project_root() / "params.yaml").read_text())
    tiny = run.tiny_params(params)
    assert problems(tiny) == []
    titok, dino = tiny["slics_titok"]["datasets"], tiny["slics_dino"]["datasets"]
    assert len(titok) == len(dino) == 1 and sorted(titok + dino) == sorted(params["slics_titok"]["datasets"])
    outs = run.full_only("05_slics_titok", tiny)
    assert f"data/embeddings/titok-l32/{titok[0]}/codebook.npy" in outs and len(outs) == 4
    assert not any(dino[0] in o for o in outs)
    assert run.full_only("03_slics_clip", tiny) == [f"results/figures/slics_clip_qualitative_{d}.png"
                                                     for d in params["slics_clip"]["datasets"]]
