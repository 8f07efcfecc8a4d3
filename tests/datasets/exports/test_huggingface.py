"""The Hugging Face export loads with ``datasets.load_dataset``, offline, as a buyer loads it.

Its own module: importing ``datasets`` takes about a second.
"""

from pathlib import Path

import pytest

from backend.datasets.exports import huggingface as hf_module
from backend.datasets.exports import write_export
from tests.datasets.exports.helpers import (
    CLASSES,
    TEXTS,
    image_bbox_case,
    image_classification_case,
    listed,
    make_context,
    many_text_items,
    text_classification_case,
    transcription_json_case,
    transcription_text_case,
)


@pytest.fixture
def load(tmp_path, monkeypatch):
    """``load(folder)``: ``load_dataset(folder, split="train")`` offline, with a fresh cache."""
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets
    import huggingface_hub.constants

    # Read at import time: set here too in case another module imported them first.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def load(folder: Path, builder: str | None = None):
        if builder is None:
            return datasets.load_dataset(str(folder), split="train", cache_dir=str(home / "c"))
        return datasets.load_dataset(
            builder, data_dir=str(folder), split="train", cache_dir=str(home / "c")
        )

    return load


def export(case, out: Path) -> Path:
    write_export("huggingface", case.ctx, case.items, case.open_media, out)
    return out


def test_image_classification(tmp_path, load):
    case = image_classification_case()
    ds = load(export(case, tmp_path / "out"))
    assert ds.num_rows == 4
    assert ds.features["label"].names == CLASSES
    assert ds["label"] == [0, 1, 0, 1]
    assert ds["index"] == [0, 1, 2, 4]
    assert ds["content_hash"] == [i.content_hash for i in case.rows]
    assert ds["external_id"] == ["img-0", None, None, None]
    assert type(ds.features["image"]).__name__ == "Image"
    images = [row["image"] for row in ds]
    assert [im.size for im in images] == [(64, 48), (32, 40), (20, 10), (16, 16)]
    assert [im.format for im in images] == ["PNG", "JPEG", "WEBP", "PNG"]
    assert ds[0]["confidence"] == 0.75 and ds[0]["n_answers"] == 4


def test_image_bbox(tmp_path, load):
    case = image_bbox_case()
    ds = load(export(case, tmp_path / "out"))
    assert ds.num_rows == 3
    objects = ds.features["objects"]
    assert objects.feature["category"].names == CLASSES
    first = ds[0]
    assert first["image"].size == (64, 48)
    assert first["objects"] == [
        {"bbox": [8.0, 4.0, 32.0, 24.0], "category": 0},
        {"bbox": [0.0, 0.0, 64.0, 48.0], "category": 2},
    ]
    assert ds[1]["objects"] == []
    assert ds[2]["objects"] == [{"bbox": [2.5, 3.0, 10.0, 20.5], "category": 1}]


def test_text_classification(tmp_path, load):
    case = text_classification_case()
    ds = load(export(case, tmp_path / "out"))
    assert ds.features["label"].names == CLASSES
    assert ds["text"] == TEXTS
    assert ds["label"] == [0, 1, 0, 2]
    assert ds["external_id"] == ["t0", "t1", "t2", "t3"]


def test_transcriptions(tmp_path, load):
    text = load(export(transcription_text_case(), tmp_path / "text"))
    assert text["label"] == [t.upper() for t in TEXTS]
    case = transcription_json_case()
    data = load(export(case, tmp_path / "json"))
    assert data["label"][0] == '{"length":29,"ok":true,"words":["A","plain"]}'


def test_many_shards_load_in_order(tmp_path, load, monkeypatch):
    monkeypatch.setattr(hf_module, "SHARD_ITEMS", 2_000)
    ctx = make_context("text_classification", "label")
    out = tmp_path / "out"
    write_export("huggingface", ctx, many_text_items(5_000), lambda d: None, out)
    assert sum(f.path.endswith(".parquet") for f in listed(out)) == 3
    ds = load(out)
    assert ds.num_rows == 5_000
    assert ds["index"] == list(range(5_000))


def test_other_licence_card_loads(tmp_path, load):
    case = text_classification_case()
    from dataclasses import replace

    case.ctx = replace(case.ctx, license_spdx=None)
    ds = load(export(case, tmp_path / "out"))
    assert ds.num_rows == 4


def test_imagefolder_export_loads_as_imagefolder(tmp_path, load):
    case = image_classification_case()
    out = tmp_path / "out"
    write_export("imagefolder", case.ctx, case.items, case.open_media, out)
    ds = load(out, builder="imagefolder")
    assert ds.num_rows == 4
    names = ds.features["label"].names
    assert sorted(names) == ["cat", "dog"]
    assert sorted(names[i] for i in ds["label"]) == ["cat", "cat", "dog", "dog"]
