"""The Croissant export validates with ``mlcroissant`` and its record set loads, offline.

Its own module: importing ``mlcroissant`` takes a few seconds.
"""

import json
from dataclasses import replace
from pathlib import Path

import mlcroissant as mlc
import pytest

from backend.datasets.exports import write_export
from tests.datasets.exports.helpers import CASES, TEXTS, make_context, text_item

# rdflib's JSON-LD parser, inside mlcroissant, not ours to change.
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")


def export(case, out: Path) -> Path:
    write_export("croissant", case.ctx, case.items, case.open_media, out)
    return out / "croissant.json"


def validated(path: Path) -> mlc.Dataset:
    """The dataset, once ``mlcroissant`` found neither an error nor a warning in it."""
    ds = mlc.Dataset(jsonld=str(path))  # raises ValidationError on any error
    issues = ds.metadata.ctx.issues
    assert not issues.errors and not issues.warnings, issues.report()
    return ds


def records(ds: mlc.Dataset) -> list[dict]:
    def text(value):
        return value.decode() if isinstance(value, bytes) else value

    return [
        {key.split("/", 1)[1]: text(value) for key, value in record.items()}
        for record in ds.records(record_set="items")
    ]


@pytest.mark.parametrize("case_name", list(CASES))
def test_validates_and_loads(tmp_path, case_name):
    case = CASES[case_name]()
    ds = validated(export(case, tmp_path))
    rows = records(ds)
    assert [r["index"] for r in rows] == [i.index for i in case.rows]
    assert [r["content_hash"] for r in rows] == [i.content_hash for i in case.rows]
    assert [r["n_answers"] for r in rows] == [i.n_answers for i in case.rows]
    # pandas reads JSON floats to within an ulp or so, not exactly
    assert [r["confidence"] for r in rows] == pytest.approx([i.confidence for i in case.rows])
    fmt = case.ctx.label_format
    if fmt == "label":
        assert [r["label"] for r in rows] == [i.label["label"] for i in case.rows]
    elif fmt == "text":
        assert [r["label"] for r in rows] == [t.upper() for t in TEXTS]
    else:
        key = "boxes" if fmt == "boxes" else "data"
        assert [json.loads(r["label"]) for r in rows] == [i.label[key] for i in case.rows]


def test_rai_and_provenance_fields(tmp_path):
    case = CASES["image_bbox"]()
    path = export(case, tmp_path)
    md = validated(path).metadata
    assert md.data_collection and "ConsentRegistry" in md.data_collection
    assert md.data_annotation_protocol and case.ctx.description in md.data_annotation_protocol[0]
    assert md.data_annotation_platform == ["Provenant crowdsourced data marketplace"]
    assert md.annotations_per_item.startswith("3.5 answers per item")
    assert md.data_annotation_analysis and md.personal_sensitive_information
    assert md.data_use_cases and "Research only" in md.data_use_cases[0]
    assert md.data_limitations
    assert md.license == ["https://spdx.org/licenses/CC-BY-4.0.html"]
    assert md.version == "2.0.0"
    assert md.extra_properties["prov:wasDerivedFrom"] == "/versions/12/manifest"
    generated = md.extra_properties["prov:wasGeneratedBy"]
    assert generated["prov:atLocation"] == f"eip155:31337:{case.ctx.marketplace}"
    props = {p["name"]: p["value"] for p in generated["additionalProperty"]}
    assert props["versionId"] == str((7 << 32) | 2)
    assert props["itemRoot"] == case.ctx.item_root and props["chainId"] == 31337
    doc = json.loads(path.read_text())
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    # every RAI property the brief lists, spelled as mlcroissant reads them
    for key in [
        "rai:dataCollection",
        "rai:dataAnnotationProtocol",
        "rai:dataAnnotationPlatform",
        "rai:annotationsPerItem",
        "rai:dataAnnotationAnalysis",
        "rai:personalSensitiveInformation",
        "rai:dataUseCases",
        "rai:dataLimitations",
    ]:
        assert doc[key]
    assert "image" not in (tmp_path / "records.jsonl").read_text()


def test_labels_that_look_like_numbers_stay_text(tmp_path):
    ctx = replace(make_context("text_classification", "label"), classes=["007", "1", "1e3"])
    rows = [text_item(i, f"t{i}", {"label": c}) for i, c in enumerate(["007", "1", "1e3"])]
    write_export("croissant", ctx, lambda: iter(rows), lambda d: None, tmp_path)
    loaded = records(validated(tmp_path / "croissant.json"))
    assert [r["label"] for r in loaded] == ["007", "1", "1e3"]


def test_a_wrong_checksum_fails_to_load(tmp_path):
    path = export(CASES["text_classification"](), tmp_path)
    with open(tmp_path / "records.jsonl", "a", encoding="utf-8") as f:
        f.write("\n")
    with pytest.raises(Exception) as exc:
        list(mlc.Dataset(jsonld=str(path)).records(record_set="items"))
    assert "Hash of downloaded file" in str(exc.value.__cause__)


def test_terms_without_spdx_id(tmp_path):
    case = CASES["text_classification"]()
    case.ctx = replace(case.ctx, license_spdx=None, scope="commercial_ai_training")
    md = validated(export(case, tmp_path)).metadata
    (licence,) = md.license
    assert case.ctx.license_terms_hash in licence.description
    assert "commercial AI training" in md.data_use_cases[0]
