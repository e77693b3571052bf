"""Flat metrics summaries for `dvc metrics show`, and the DVC declarations around them."""

import json
import shutil

import pytest
import yaml

from slics.utils import summaries
from slics.utils.config import project_root


def _detail(section):
    return json.loads((project_root() / "results" / "metrics" / f"{section}.json").read_text())


def test_summaries_copy_the_detailed_values_under_short_flat_keys():
    clip = summaries.summarise("slics_clip", _detail("slics_clip"))
    backbone_keys = [k for k in _detail("slics_clip") if k.startswith("mirflickr25k/")]
    assert len(backbone_keys) == 1
    assert clip["mir_gen"] == _detail("slics_clip")[backbone_keys[0]]["S-SLiCS"]["map_general"]
    assert summaries.summarise("robustness", _detail("robustness"))["median"] == 1.0
    for section in summaries.SUMMARIES:
        flat = summaries.summarise(section, _detail(section))
        assert 1 <= len(flat) <= 6, section  # a table that fits a terminal
        assert all(isinstance(v, (int, float)) for v in flat.values()), section
        assert all("." not in k and len(k) <= 12 for k in flat), section  # dvc joins nested keys with "."


def test_a_changed_layout_names_the_section_and_the_fix():
    with pytest.raises(KeyError, match=r"ista_clip.json has no 'dense_accuracy'.*SUMMARIES\['ista_clip'\]"):
        summaries.summarise("ista_clip", {"accuracy": 0.9})
    with pytest.raises(ValueError, match="section='nope'"):
        summaries.summarise("nope", {})


def test_a_section_run_on_fewer_datasets_leaves_out_their_keys_and_only_theirs():
    params = {"embed": {"backbone": "demo"}, "slics_clip": {"datasets": ["mirflickr25k", "coco"]},
              "slics_titok": {"datasets": ["coco"]}, "slics_dino": {"datasets": ["mirflickr25k"]}}
    skip = summaries.skipped_datasets(params)
    assert skip["slics_titok"] == {"mirflickr25k"} and skip["slics_dino"] == {"coco"}
    assert skip["slics_clip"] == skip["robustness"] == set()
    detail = _detail("slics_titok")
    coco_only = {k: v for k, v in detail.items() if k != "mirflickr25k"}
    flat = summaries.summarise("slics_titok", coco_only, skip=skip["slics_titok"])
    assert flat == {k: v for k, v in summaries.summarise("slics_titok", detail).items() if k.startswith("coco_")}
    with pytest.raises(KeyError, match="no 'mirflickr25k'"):     # a dataset the params name stays required
        summaries.summarise("slics_titok", coco_only)


def test_write_summaries_matches_the_committed_files(tmp_path):
    shutil.copytree(project_root() / "results" / "metrics", tmp_path / "metrics")
    for section in summaries.SUMMARIES:
        (tmp_path / "metrics" / f"{section}_summary.json").unlink()
    written = summaries.write_summaries(tmp_path)
    assert len(written) == len(summaries.SUMMARIES)
    for path in written:
        assert path.read_bytes() == (project_root() / "results" / "metrics" / path.name).read_bytes()
    (tmp_path / "metrics" / "concepts.json").unlink()
    with pytest.raises(FileNotFoundError, match="concepts.json"):
        summaries.write_summaries(tmp_path)


def test_dvc_declares_only_summaries_as_metrics_and_every_figure_as_a_plot():
    dvc = yaml.safe_load((project_root() / "dvc.yaml").read_text())
    metrics = [next(iter(m)) for s in dvc["stages"].values() for m in s.get("metrics", [])]
    assert sorted(metrics) == sorted(f"results/metrics/{s}_summary.json" for s in summaries.SUMMARIES)
    assert all("plots" not in s for s in dvc["stages"].values())  # stage plots duplicate the top-level ones
    declared = {next(iter(p)) if isinstance(p, dict) else p for p in dvc["plots"]}
    figures = {f"results/figures/{p.name}" for p in (project_root() / "results" / "figures").glob("*.png")}
    assert figures <= declared
    for plot in dvc["plots"]:
        if isinstance(plot, dict):
            (path, spec), = plot.items()
            assert spec["x"] and spec["y"], path


def test_dvc_plots_template_loads_only_vendored_scripts():
    dvc_dir = project_root() / ".dvc"
    config = (dvc_dir / "config").read_text()
    assert "html_template = plots/index.html" in config
    template = (dvc_dir / "plots" / "index.html").read_text()
    assert "{plot_divs}" in template and "{scripts}" not in template  # {scripts} would add CDN links
    for script in ("vega", "vega-lite", "vega-embed"):
        assert f'src="../.dvc/plots/vendor/{script}.min.js"' in template
        assert (dvc_dir / "plots" / "vendor" / f"{script}.min.js").stat().st_size > 10_000
        assert "Redistribution" in (dvc_dir / "plots" / "vendor" / f"{script}.LICENSE").read_text()
    assert "http" not in template


def test_full_profile_leaves_out_the_demos_planted_rotation():
    """Found by the rehearsal: the full profile's section 3.7 has no planted rotation (no noise level,
    no rotation error), and its summary must not demand them; the demo's still must."""
    full = {"profile": "full", "flickr30k": {}, "main": {"procrustes_over_least_squares_mse": 0.5774}}
    assert summaries.summarise("image_to_prompt", full) == {"mse_vs_ls": 0.5774}
    with pytest.raises(KeyError, match="'noise' under main"):
        summaries.summarise("image_to_prompt", {**full, "profile": "demo"})


def test_table2_summary_is_the_primary_backbone_of_several():
    """Found by the rehearsal: the full profile's Table 2 has a key per backbone (clip-rn50 and
    clip-vit-b32); the summary takes ``embed.backbone``'s and names a missing one."""
    detail = {f"{ds}/{b}": {m: {"map_general": hash((ds, b, m)) % 97 / 100, "map_sub": 0.5}
                            for m in ("S-SLiCS", "UF")}
              for ds in ("mirflickr25k", "coco") for b in ("clip-rn50", "clip-vit-b32")}
    for backbone in ("clip-rn50", "clip-vit-b32"):
        flat = summaries.summarise("slics_clip", detail, backbone)
        assert flat["mir_gen"] == detail[f"mirflickr25k/{backbone}"]["S-SLiCS"]["map_general"]
        assert flat["coco_uf_gen"] == detail[f"coco/{backbone}"]["UF"]["map_general"]
    with pytest.raises(KeyError, match="no 'mirflickr25k/clip-vit-l14' under the top level"):
        summaries.summarise("slics_clip", detail, "clip-vit-l14")


def test_main_reports_invalid_params_without_a_traceback(monkeypatch, capsys):
    from slics.utils.schema import ParamsError

    def invalid():
        raise ParamsError("params.yaml is not valid (1 problem(s)):\n  - embed.backbone: missing (required)")

    monkeypatch.setattr(summaries, "load_params", invalid)
    assert summaries.main([]) == 1
    assert "error: params.yaml is not valid" in capsys.readouterr().err
