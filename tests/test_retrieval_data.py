"""Label readers (MIRFlickr25K, COCO DeepHash lists and official instances JSON) and splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slics.data import coco, mirflickr
from slics.data.multilabel import prompt_name, read_label_lines
from slics.data.splits import SPLITS, make_split, split_counts, split_table


def _line(name, names, on):
    return name + " " + " ".join("1" if n in on else "0" for n in names)


def test_mirflickr_hierarchy_from_real_format(tmp_path):
    lines = [_line("im3.jpg", mirflickr.LABELS38, {"dog", "dog_r1", "sky"}),
             _line("im1.jpg", mirflickr.LABELS38, {"people", "baby"}),
             _line("im2.jpg", mirflickr.LABELS38, {"tree"}),          # sub-label without its general column
             _line("im10.jpg", mirflickr.LABELS38, set())]
    (tmp_path / "a.txt").write_text("\n".join(lines[:2]) + "\n")
    (tmp_path / "b.txt").write_text("\n".join(lines[2:]) + "\n")
    data = mirflickr.read_mirflickr25k([tmp_path / "a.txt", tmp_path / "b.txt"])
    assert data.image_ids == ("im1.jpg", "im2.jpg", "im3.jpg", "im10.jpg")     # by image number
    assert len(data.general_names) == 11 and len(data.sub_names) == 13 and len(data.label_names) == 24
    assert sum(1 for subs in data.hierarchy().values() if subs) == 6
    g = {n: i for i, n in enumerate(data.general_names)}
    assert data.general[0, g["people"]] and data.general[1, g["plant_life"]]    # union with sub-labels
    assert data.general[2, g["animals"]] and data.general[2, g["sky"]] and data.general[2].sum() == 2
    assert data.sub[2, data.sub_names.index("dog")]
    assert data.sub_parent[data.sub_names.index("clouds")] == g["sky"]
    kept = data.drop_unlabelled()
    assert kept.image_ids == ("im1.jpg", "im2.jpg", "im3.jpg")


def test_label_lines_reject_malformed_rows():
    with pytest.raises(ValueError, match="line 2"):
        read_label_lines(["a.jpg 0 1", "b.jpg 0 2"], 2)
    with pytest.raises(ValueError, match="more than once"):
        read_label_lines(["a.jpg 0 1", "a.jpg 1 0"], 2)
    for bad in ["b.jpg 0 11", "b.jpg 01", "b.jpg 0 1 0", "b.jpg 0", "b.jpg 1.0 0", "b.jpg 0 -", "b.jpg 0 \u0661"]:
        with pytest.raises(ValueError, match="line 3: expected an image name and 2 0/1 columns"):
            read_label_lines(["a.jpg 0 1", "", bad], 2)


def test_label_lines_match_a_field_by_field_parse():
    rng = np.random.default_rng(7)
    bits = rng.random((300, 24)) < 0.3
    lines = [f"im{i}.jpg " + " ".join("1" if b else "0" for b in row) + ("\t \n" if i % 7 else "") for i, row in
             enumerate(bits)]
    names, got = read_label_lines(lines[:150] + ["   "] + lines[150:], 24)
    assert names == tuple(f"im{i}.jpg" for i in range(300)) and got.dtype == bool
    np.testing.assert_array_equal(got, bits)
    assert read_label_lines(["a.jpg", "b.jpg"], 0)[1].shape == (2, 0)


def test_coco_category_list_is_official():
    assert len(coco.CATEGORIES) == 80 and len(coco.SUPERCATEGORIES) == 12
    assert coco.SUPERCATEGORIES[:4] == ("person", "vehicle", "outdoor", "animal")
    assert [c for _, c, s in coco.CATEGORIES if s == "appliance"] == \
        ["microwave", "oven", "toaster", "sink", "refrigerator"]


def test_coco_deephash_columns_are_alphabetical(tmp_path):
    path = tmp_path / "coco.txt"
    path.write_text(_line("train2014/x.jpg", coco.ALPHABETICAL, {"zebra", "person"}) + "\n"
                    + _line("val2014/y.jpg", coco.ALPHABETICAL, {"toaster"}) + "\n")
    data = coco.read_deephash_coco([path])
    names = data.sub_names
    assert set(np.array(names)[data.sub[0]]) == {"zebra", "person"}
    assert list(np.array(data.general_names)[data.general[0]]) == ["person", "animal"]
    assert list(np.array(data.general_names)[data.general[1]]) == ["appliance"]


def test_coco_official_instances_json(tmp_path):
    doc = {
        "info": {"description": "fixture"}, "licenses": [],
        "images": [{"id": 9, "file_name": "000000000009.jpg", "height": 480, "width": 640},
                   {"id": 25, "file_name": "000000000025.jpg", "height": 426, "width": 640},
                   {"id": 30, "file_name": "000000000030.jpg", "height": 428, "width": 640}],
        "annotations": [
            {"id": 1, "image_id": 9, "category_id": 51, "iscrowd": 0, "bbox": [0, 0, 1, 1], "area": 1.0,
             "segmentation": [[0, 0, 1, 0, 1, 1]]},
            {"id": 2, "image_id": 9, "category_id": 56, "iscrowd": 0, "bbox": [0, 0, 1, 1], "area": 1.0,
             "segmentation": [[0, 0, 1, 0, 1, 1]]},
            {"id": 3, "image_id": 25, "category_id": 25, "iscrowd": 1, "bbox": [0, 0, 1, 1], "area": 1.0,
             "segmentation": {"counts": [0, 1], "size": [426, 640]}},
        ],
        "categories": [{"supercategory": s, "id": i, "name": n} for i, n, s in coco.CATEGORIES],
    }
    path = tmp_path / "instances_train2017.json"
    path.write_text(json.dumps(doc))
    data = coco.read_instances(path)
    assert data.image_ids == ("000000000009.jpg", "000000000025.jpg", "000000000030.jpg")
    assert set(np.array(data.sub_names)[data.sub[0]]) == {"bowl", "broccoli"}
    assert set(np.array(data.general_names)[data.general[0]]) == {"kitchen", "food"}
    assert list(np.array(data.general_names)[data.general[1]]) == ["animal"]     # giraffe, crowd
    assert not data.general[2].any() and len(data.drop_unlabelled()) == 2
    bad = dict(doc, categories=doc["categories"][:-1])
    with pytest.raises(ValueError, match="official 80"):
        coco.read_instances(bad)


def test_prompt_names():
    assert prompt_name("plant_life") == "plant life"


def test_split_sizes_determinism_and_disjointness():
    a = make_split(100, 20, 5, 10, seed=3)
    b = make_split(100, 20, 5, 10, seed=3)
    c = make_split(100, 20, 5, 10, seed=4)
    assert (a == b).all() and not (a == c).all()
    counts = split_counts(a).set_index("split")["images"]
    assert counts.to_dict() == {"train": 20, "val": 5, "query": 10, "pool": 65}
    assert set(a) == set(SPLITS)                           # one role per image: disjoint by construction
    table = split_table([f"im{i}.jpg" for i in range(100)], a)
    assert table["image"].is_unique and (table["split"].to_numpy() == a).all()
    with pytest.raises(ValueError, match="non-empty pool"):
        make_split(35, 20, 5, 10, seed=0)
