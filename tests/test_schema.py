"""params.yaml is validated up front: a bad value fails in seconds and names the key."""

import subprocess
import sys
import resource

import pytest
import yaml

from slics.utils import schema
from slics.utils.config import load_params, project_root


def _params():
    return yaml.safe_load((project_root() / "params.yaml").read_text())


def test_committed_params_are_valid():
    assert schema.problems(_params()) == []


@pytest.mark.parametrize("mutate, key, words", [
    (lambda p: p["ista_clip"].pop("convergence_n_iter"), "ista_clip.convergence_n_iter", "missing"),
    (lambda p: p.update(seed=-1), "seed", ">= 0"),
    (lambda p: p["ista_clip"]["lambdas"].__setitem__(2, -0.05), "ista_clip.lambdas[2]", "> 0"),
    (lambda p: p["ista_clip"].update(n_iter=2.5), "ista_clip.n_iter", "integer"),
    (lambda p: p.update(profile="fast"), "profile", "one of demo, full"),
    (lambda p: p["embed"].update(prompt_template="a photo"), "embed.prompt_template", "'{}'"),
    (lambda p: p["demo_world"].update(label_weight=[2.0, 0.1]), "demo_world.label_weight", "low <= high"),
    (lambda p: p["ista_clip"].update(lamdbas=[0.1]), "ista_clip.lamdbas", "unknown key"),
    (lambda p: p["ista_clip"].update(top_lambda=0.3), "ista_clip.top_lambda", "one of ista_clip.lambdas"),
    (lambda p: p["embed"].update(backbone="clip-rn50"), "embed.backbone", "full profile"),
    (lambda p: p["slics_clip"]["batch_size"].update(coco=0), "slics_clip.batch_size.coco", "(or null)"),
    (lambda p: p["datasets"]["coco"]["splits"]["demo"].update(n_train=2.5), "datasets.coco.splits.demo.n_train",
     "integer"),
    (lambda p: p["slics_clip"].update(datasets=["voc"]), "slics_clip.datasets[0]", "one of mirflickr25k, coco"),
    (lambda p: p["image_to_prompt"].update(train_sizes=[300, 800]), "image_to_prompt.train_sizes", "demo 384"),
    (lambda p: p["image_to_prompt"]["generation"].update(method="dalle"), "image_to_prompt.generation.method",
     "one of ding2023, unclip"),
    (lambda p: p["image_to_prompt"]["generation"]["model"].pop("ding2023"), "image_to_prompt.generation.model.ding2023",
     "missing"),
    (lambda p: p["image_to_prompt"]["generation"].update(n_queries=0), "image_to_prompt.generation.n_queries", ">= 1"),
    (lambda p: p["image_to_prompt"]["generation"].update(pinv_atol=-0.3), "image_to_prompt.generation.pinv_atol",
     ">= 0"),
    (lambda p: p.update(profile="full") or p["embed"].update(backbone="clip-vit-b32"),
     "image_to_prompt.train_sizes", "full 512"),   # the demo's 400 is below ViT-B/32's 512 dimensions
])
def test_bad_value_names_key_and_rule(mutate, key, words):
    params = _params()
    mutate(params)
    with pytest.raises(schema.ParamsError) as err:
        schema.validate(params)
    assert key in str(err.value) and words in str(err.value)


def test_stage_fails_fast_naming_the_key(tmp_path):
    """The notebook stage's own command, on a broken params.yaml, fails in under 5 s."""
    root = project_root()
    (tmp_path / "dvc.yaml").write_text((root / "dvc.yaml").read_text())
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "02_ista_clip.ipynb").write_text((root / "notebooks" / "02_ista_clip.ipynb").read_text())
    params = _params()
    params["ista_clip"].pop("convergence_n_iter")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "slics.utils.notebooks", "02_ista_clip"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)  # load-independent
    assert proc.returncode != 0
    assert "ista_clip.convergence_n_iter: missing" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert cpu_s < 5, f"took {cpu_s:.1f} s of CPU time"


def test_load_params_validates(tmp_path):
    params = _params()
    params["seed"] = "zero"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(schema.ParamsError, match="seed = 'zero': must be an integer"):
        load_params(path)
