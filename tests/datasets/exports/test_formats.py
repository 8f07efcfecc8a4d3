"""Every export format writes what it says, for every task type it supports."""

import csv
import hashlib
import io
import json
import tarfile
import tempfile
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image
from pycocotools.coco import COCO

from backend.datasets.exports import FORMATS, formats_for, write_export
from backend.datasets.exports import huggingface as hf_module
from backend.datasets.exports.common import Output
from backend.datasets.exports.imagefolder import directory_names
from backend.provenance.leaf import canonical_json
from tests.datasets.exports.helpers import (
    BOXES,
    CASES,
    CLASSES,
    TEXTS,
    Case,
    check_files,
    image_bbox_case,
    image_classification_case,
    image_item,
    make_context,
    many_text_items,
    text_classification_case,
    transcription_json_case,
)

TASK_OF_CASE = {
    "image_classification": "image_classification",
    "image_bbox": "image_bbox",
    "text_classification": "text_classification",
    "transcription_text": "transcription",
    "transcription_json": "transcription",
}
PAIRS = [
    (fmt, case)
    for fmt, info in FORMATS.items()
    for case, task in TASK_OF_CASE.items()
    if task in info.task_types
]


def write(fmt: str, case: Case, out: Path, **kwargs):
    return write_export(fmt, case.ctx, case.items, case.open_media, out, **kwargs)


# --- the API ---------------------------------------------------------------------------------


def test_formats_for_each_task_type():
    assert formats_for("image_classification") == [
        "jsonl",
        "csv",
        "coco",
        "imagefolder",
        "huggingface",
        "croissant",
    ]
    assert formats_for("image_bbox") == ["jsonl", "csv", "coco", "yolo", "huggingface", "croissant"]
    text_formats = ["jsonl", "csv", "huggingface", "croissant"]
    assert formats_for("text_classification") == text_formats
    assert formats_for("transcription") == text_formats
    assert formats_for("text_transcription") == text_formats  # the design's name for it
    for info in FORMATS.values():
        assert info.description and info.task_types


@pytest.mark.parametrize(("fmt", "case_name"), PAIRS)
def test_every_format_writes_files_with_their_digests(tmp_path, fmt, case_name):
    case = CASES[case_name]()
    summary = write(fmt, case, tmp_path)
    assert summary.files
    check_files(tmp_path, summary)
    assert case.media.opened == case.media.closed  # every image stream was closed


@pytest.mark.parametrize(("fmt", "case_name"), PAIRS)
def test_the_tar_archive_holds_the_directorys_files_the_same_bytes_every_time(
    tmp_path, fmt, case_name
):
    directory = tmp_path / "dir"
    from_dir = write(fmt, CASES[case_name](), directory)
    archives = []
    for _ in range(2):
        stream = io.BytesIO()
        assert write(fmt, CASES[case_name](), stream) == from_dir
        archives.append(stream.getvalue())
    assert archives[0] == archives[1]  # no time, owner or order of this run in it

    with tarfile.open(fileobj=io.BytesIO(archives[0])) as tar:
        members = tar.getmembers()
        assert all(m.isfile() and m.mtime == 0 and m.mode == 0o644 and not m.uname for m in members)
        assert members[-1].name == "SHA256SUMS"  # written last, over all the others
        in_tar = {m.name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    # The same bytes tarfile writes for these members.
    rebuilt = io.BytesIO()
    with tarfile.open(fileobj=rebuilt, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            tar.addfile(m, io.BytesIO(in_tar[m.name]))
    assert rebuilt.getvalue() == archives[0]
    on_disk = {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in directory.rglob("*")
        if p.is_file()
    }
    assert in_tar == on_disk


def test_a_long_or_non_ascii_member_name_gets_the_pax_header_tarfile_writes():
    name = "classes/" + "é" * 80 + "/" + "x" * 120 + ".png"
    stream = io.BytesIO()
    out = Output(stream)
    with out.open(name) as f:
        f.write(b"\x89PNG" * 1000)
    out.close()
    with tarfile.open(fileobj=io.BytesIO(stream.getvalue())) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [name, "SHA256SUMS"]
        data = {m.name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    rebuilt = io.BytesIO()
    with tarfile.open(fileobj=rebuilt, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            tar.addfile(m, io.BytesIO(data[m.name]))
    assert rebuilt.getvalue() == stream.getvalue()


def test_a_failed_export_leaves_no_scratch_files(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    ctx = make_context("text_classification", "label")

    def items():
        yield from many_text_items(60_000)()
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError, match="went away"):
        write_export("huggingface", ctx, items, lambda d: None, io.BytesIO())
    assert list((tmp_path / "scratch").iterdir()) == []


def test_unknown_format_names_the_supported_ones(tmp_path):
    case = text_classification_case()
    with pytest.raises(ValueError, match=r"unknown export format 'parquet'; supported: jsonl, csv"):
        write("parquet", case, tmp_path)


@pytest.mark.parametrize("fmt", ["coco", "yolo", "imagefolder"])
def test_format_not_for_the_task_type(tmp_path, fmt):
    case = text_classification_case()
    with pytest.raises(ValueError) as exc:
        write(fmt, case, tmp_path)
    assert str(exc.value) == (
        f"export format {fmt!r} does not support task type 'text_classification'; "
        "supported for it: jsonl, csv, huggingface, croissant"
    )
    assert not any(tmp_path.iterdir())


def test_yolo_not_for_classification(tmp_path):
    with pytest.raises(ValueError, match="'yolo' does not support task type 'image_classific"):
        write("yolo", image_classification_case(), tmp_path)


def test_unknown_task_type(tmp_path):
    case = text_classification_case()
    case.ctx = replace(case.ctx, task_type="audio")
    with pytest.raises(ValueError, match="unknown task type 'audio'"):
        write("jsonl", case, tmp_path)
    with pytest.raises(ValueError, match="unknown task type 'audio'"):
        formats_for("audio")


def test_refuses_a_directory_that_is_not_empty(tmp_path):
    (tmp_path / "left.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        write("jsonl", text_classification_case(), tmp_path)


def test_refuses_items_out_of_order(tmp_path):
    case = text_classification_case()
    case.rows = [case.rows[1], case.rows[0]]
    with pytest.raises(ValueError, match="item 0 comes after item 1"):
        write("jsonl", case, tmp_path)


def test_refuses_an_image_that_is_not_the_item(tmp_path):
    case = image_classification_case()
    digest = case.rows[0].media_digest
    case.media.blobs[digest] = b"\x89PNG something else"
    with pytest.raises(ValueError, match="item 0: the stored image hashes to 0x"):
        write("jsonl", case, tmp_path / "jsonl")
    with pytest.raises(ValueError, match="item 0: the stored image hashes to 0x"):
        write("huggingface", case, tmp_path / "hf")


def test_refuses_a_content_hash_that_is_not_one(tmp_path):
    case = image_classification_case()
    case.rows[0] = replace(case.rows[0], content_hash="0x../../etc")
    with pytest.raises(ValueError, match="is not 0x \\+ 64 lowercase hex"):
        write("jsonl", case, tmp_path)


def test_refuses_a_label_outside_the_classes(tmp_path):
    case = image_classification_case()
    case.rows[1] = replace(case.rows[1], label={"label": "horse"})
    with pytest.raises(ValueError, match="item 1: 'horse' is not one of the classes"):
        write("coco", case, tmp_path)


def test_progress_every_thousand_items_and_at_the_end(tmp_path):
    ctx = make_context("text_classification", "label")
    seen: list[int] = []
    write_export("jsonl", ctx, many_text_items(2_500), lambda d: None, tmp_path, seen.append)
    assert seen == [1_000, 2_000, 2_500]


def test_empty_version(tmp_path):
    ctx = make_context("text_classification", "label")
    seen: list[int] = []
    summary = write_export("jsonl", ctx, lambda: iter([]), lambda d: None, tmp_path, seen.append)
    files = check_files(tmp_path, summary)
    assert [f.path for f in files] == ["data.jsonl"] and files[0].bytes == 0
    assert seen == [0]


# --- JSON Lines and CSV ----------------------------------------------------------------------


def test_jsonl_rows(tmp_path):
    case = image_classification_case()
    write("jsonl", case, tmp_path)
    lines = (tmp_path / "data.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["index"] for r in rows] == [0, 1, 2, 4]
    first = rows[0]
    assert first == {
        "index": 0,
        "content_hash": case.rows[0].content_hash,
        "external_id": "img-0",
        "image": f"images/{case.rows[0].content_hash[2:]}.png",
        "label": {"label": "cat"},
        "confidence": 0.75,
        "n_answers": 4,
    }
    assert lines[0] == json.dumps(first, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert [r["image"].rsplit(".", 1)[1] for r in rows] == ["png", "jpg", "webp", "png"]
    for item, row in zip(case.rows, rows, strict=True):
        # byte for byte the stored image: its SHA-256 is the item's content hash
        data = (tmp_path / row["image"]).read_bytes()
        assert "0x" + hashlib.sha256(data).hexdigest() == item.content_hash


def test_jsonl_text_keeps_unicode(tmp_path):
    case = transcription_json_case()
    write("jsonl", case, tmp_path)
    raw = (tmp_path / "data.jsonl").read_text(encoding="utf-8")
    assert "猫" in raw and "\\u" not in raw
    rows = [json.loads(line) for line in raw.splitlines()]
    assert [r["text"] for r in rows] == TEXTS
    assert rows[1]["label"] == case.rows[1].label
    assert "image" not in rows[0]
    assert not (tmp_path / "images").exists()


def test_csv_text_with_commas_quotes_and_newlines(tmp_path):
    case = text_classification_case()
    write("csv", case, tmp_path)
    raw = (tmp_path / "data.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    with open(tmp_path / "data.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        "index",
        "content_hash",
        "external_id",
        "text",
        "label",
        "confidence",
        "n_answers",
    ]
    assert [r[3] for r in rows[1:]] == TEXTS  # the embedded line break survives
    assert [r[4] for r in rows[1:]] == ["cat", "dog", "cat", "bird"]
    assert rows[1][:3] == ["0", case.rows[0].content_hash, "t0"]
    assert float(rows[1][5]) == 2 / 3 and rows[1][6] == "3"


def test_csv_boxes_are_canonical_json(tmp_path):
    case = image_bbox_case()
    write("csv", case, tmp_path)
    with open(tmp_path / "data.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == [canonical_json(b).decode() for b in BOXES]
    assert json.loads(rows[0]["label"]) == BOXES[0]
    assert rows[1]["external_id"] == ""
    assert all((tmp_path / r["image"]).is_file() for r in rows)


def test_csv_json_transcription(tmp_path):
    case = transcription_json_case()
    write("csv", case, tmp_path)
    with open(tmp_path / "data.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [json.loads(r["label"]) for r in rows] == [i.label["data"] for i in case.rows]


# --- COCO ------------------------------------------------------------------------------------


def test_coco_boxes_load_in_pycocotools(tmp_path):
    case = image_bbox_case()
    write("coco", case, tmp_path)
    coco = COCO(str(tmp_path / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == CLASSES
    assert coco.getCatIds() == [1, 2, 3]
    assert sorted(coco.getImgIds()) == [1, 2, 3]
    assert len(coco.getAnnIds()) == 3
    image = coco.loadImgs(1)[0]
    assert (image["width"], image["height"]) == (64, 48)
    assert (tmp_path / "images" / image["file_name"]).is_file()
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert [(a["category_id"], a["bbox"], a["area"], a["iscrowd"]) for a in anns] == [
        (1, [8, 4, 32, 24], 768, 0),
        (3, [0, 0, 64, 48], 3072, 0),
    ]
    assert coco.getAnnIds(imgIds=[2]) == []  # an image without boxes
    (ann,) = coco.loadAnns(coco.getAnnIds(imgIds=[3]))
    assert ann["bbox"] == [2.5, 3, 10, 20.5] and ann["category_id"] == 2
    assert ann["area"] == pytest.approx(205.0)
    assert coco.getImgIds(catIds=[2]) == [3]


def test_coco_classification_loads_without_boxes(tmp_path):
    case = image_classification_case()
    write("coco", case, tmp_path)
    coco = COCO(str(tmp_path / "annotations.json"))
    assert sorted(coco.getImgIds()) == [1, 2, 3, 5]  # item index + 1
    anns = coco.loadAnns(coco.getAnnIds())
    assert [(a["image_id"], a["category_id"]) for a in anns] == [(1, 1), (2, 2), (3, 1), (5, 2)]
    assert all("bbox" not in a for a in anns)
    assert sorted(coco.getImgIds(catIds=[1])) == [1, 3]
    assert coco.loadImgs(2)[0]["file_name"].endswith(".jpg")


# --- YOLO ------------------------------------------------------------------------------------


def test_yolo_labels_are_normalised(tmp_path):
    case = image_bbox_case()
    write("yolo", case, tmp_path)
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert data == {
        "path": ".",
        "train": "images",
        "val": "images",
        "nc": 3,
        "names": {0: "cat", 1: "dog", 2: "bird"},
    }
    stem = case.rows[0].content_hash[2:]
    # cat at x=8, y=4, 32x24 in a 64x48 image: centre (24, 16) -> (0.375, 0.333333)
    assert (tmp_path / "labels" / f"{stem}.txt").read_text() == (
        "0 0.375000 0.333333 0.500000 0.500000\n2 0.500000 0.500000 1.000000 1.000000\n"
    )
    assert (tmp_path / "images" / f"{stem}.png").is_file()
    assert (tmp_path / "labels" / f"{case.rows[1].content_hash[2:]}.txt").read_text() == ""
    # dog at x=2.5, y=3, 10x20.5 in a 40x50 image
    third = (tmp_path / "labels" / f"{case.rows[2].content_hash[2:]}.txt").read_text()
    assert third == "1 0.187500 0.265000 0.250000 0.410000\n"


def test_yolo_refuses_a_box_outside_its_image(tmp_path):
    case = image_bbox_case()
    box = {"label": "cat", "x": 50, "y": 0, "width": 20, "height": 10}
    case.rows[0] = replace(case.rows[0], label={"boxes": [box]})
    with pytest.raises(ValueError, match="not inside the 64x48 image"):
        write("yolo", case, tmp_path)


# --- ImageFolder -----------------------------------------------------------------------------


def test_imagefolder_layout(tmp_path):
    case = image_classification_case()
    write("imagefolder", case, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "SHA256SUMS",
        "cat",
        "classes.json",
        "dog",
    ]
    cats = sorted(p.name for p in (tmp_path / "cat").iterdir())
    assert cats == sorted(
        [f"{case.rows[0].content_hash[2:]}.png", f"{case.rows[2].content_hash[2:]}.webp"]
    )
    listing = json.loads((tmp_path / "classes.json").read_text())
    assert listing[2] == {"id": 2, "name": "bird", "directory": "bird"}


def test_imagefolder_directory_names():
    names = [
        "../evil",
        "a/b",
        "a\\b",
        "..",
        ".",
        ".hidden",
        "dot.",
        "Cat",
        "cat",
        "chat noir",
        "100%",
        "a%2Fb",
        "CON",
        "nul.txt",
        "é" * 200,
        "tilde~1",
        "",
    ]
    dirs = directory_names(names)
    assert dirs[0] == "%2E.%2Fevil" and dirs[2] == "a%5Cb"
    assert dirs[1] == "a%2Fb" and dirs[11] == "a%252Fb"
    assert dirs[3] == "%2E%2E" and dirs[4] == "%2E" and dirs[5] == "%2Ehidden"
    assert dirs[6] == "dot%2E" and dirs[9] == "chat%20noir" and dirs[10] == "100%25"
    assert dirs[7] == "Cat~7" and dirs[8] == "cat~8"  # would collide ignoring case
    assert dirs[12] == "CON~12" and dirs[13] == "nul.txt~13"
    assert len(dirs[14]) <= 104 and dirs[14].endswith("~14")
    assert dirs[15] == "tilde%7E1" and dirs[16] == "~16"
    for d in dirs:
        assert "/" not in d and "\\" not in d and d not in ("", ".", "..")
        assert not d.startswith(".")
    assert len({d.casefold() for d in dirs}) == len(dirs)


def test_imagefolder_keeps_hostile_class_names_inside(tmp_path):
    media_case = image_classification_case()
    classes = ["../evil", "a/b", "..", "/abs"]
    ctx = replace(media_case.ctx, classes=classes)
    rows = [
        image_item(media_case.media, i, {"label": name}, size=(8, 8 + i))
        for i, name in enumerate(classes)
    ]
    out = tmp_path / "out"
    summary = write_export("imagefolder", ctx, lambda: iter(rows), media_case.open_media, out)
    files = check_files(out, summary)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    for f in files:
        assert (out / f.path).resolve().is_relative_to(out.resolve())
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "%2E%2E",
        "%2E.%2Fevil",
        "%2Fabs",
        "a%2Fb",
    ]


# --- Hugging Face Parquet (read with pyarrow here; test_huggingface.py loads it) ---------------


def test_huggingface_shards_and_row_groups(tmp_path, monkeypatch):
    monkeypatch.setattr(hf_module, "SHARD_ITEMS", 2_000)
    ctx = make_context("text_classification", "label")
    summary = write_export("huggingface", ctx, many_text_items(5_000), lambda d: None, tmp_path)
    files = check_files(tmp_path, summary)
    shards = [f.path for f in files if f.path.endswith(".parquet")]
    assert shards == [f"data/train-0000{k}-of-00003.parquet" for k in range(3)]
    counts = [pq.ParquetFile(tmp_path / s).metadata for s in shards]
    assert [m.num_rows for m in counts] == [2_000, 2_000, 1_000]
    assert [m.num_row_groups for m in counts] == [2, 2, 1]
    first = pq.read_table(tmp_path / shards[0])
    assert first.column("index").to_pylist()[:3] == [0, 1, 2]
    assert first.column("label").to_pylist()[:3] == [0, 1, 2]
    card = (tmp_path / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["dataset_info"]["splits"] == [{"name": "train", "num_examples": 5_000}]


def test_huggingface_5000_items_default_sharding(tmp_path):
    ctx = make_context("text_classification", "label")
    summary = write_export("huggingface", ctx, many_text_items(5_000), lambda d: None, tmp_path)
    files = check_files(tmp_path, summary)
    assert [f.path for f in files] == ["README.md", "data/train-00000-of-00001.parquet"]
    meta = pq.ParquetFile(tmp_path / files[1].path).metadata
    assert (meta.num_rows, meta.num_row_groups) == (5_000, 5)


def test_huggingface_card(tmp_path):
    case = image_bbox_case()
    write("huggingface", case, tmp_path)
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\n")
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["license"] == "cc-by-4.0"
    assert header["task_categories"] == ["object-detection"]
    assert header["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/*.parquet"}]}
    ]
    names = [f["name"] for f in header["dataset_info"]["features"]]
    assert names == [
        "index",
        "content_hash",
        "external_id",
        "image",
        "objects",
        "confidence",
        "n_answers",
    ]
    body = card.split("---\n", 2)[2]
    assert "## Provenance" in body
    for value in ["31337", case.ctx.marketplace, str(case.ctx.version_id), case.ctx.item_root]:
        assert value in body
    assert case.ctx.weight_root in body and "/versions/12/manifest" in body
    assert "research" in body and "2026-01-01T00:00:00+00:00" in body
    table = pq.read_table(tmp_path / "data" / "train-00000-of-00001.parquet")
    first = table.to_pylist()[0]
    assert first["objects"] == [
        {"bbox": [8.0, 4.0, 32.0, 24.0], "category": 0},
        {"bbox": [0.0, 0.0, 64.0, 48.0], "category": 2},
    ]
    image = Image.open(io.BytesIO(first["image"]["bytes"]))
    assert image.size == (64, 48)
    assert first["image"]["path"] == f"{case.rows[0].content_hash[2:]}.png"


@pytest.mark.parametrize(
    ("spdx", "expected"),
    [
        ("MIT", {"license": "mit"}),
        ("CC0-1.0", {"license": "cc0-1.0"}),
        ("GPL-3.0-only", {"license": "gpl-3.0"}),
        ("ODbL-1.0", {"license": "odbl"}),
        (
            "LicenseRef-Acme",
            {"license": "other", "license_name": "licenseref-acme"},
        ),
        (
            "Beerware",
            {
                "license": "other",
                "license_name": "beerware",
                "license_link": "https://spdx.org/licenses/Beerware.html",
            },
        ),
        (None, {"license": "other", "license_name": "provenant-terms"}),
    ],
)
def test_hub_licence_ids(spdx, expected):
    assert hf_module.hub_license(spdx) == expected
