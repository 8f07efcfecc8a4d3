"""`provenant verify` against a version published on the suite's chain: the untampered
manifest (and its exports) verify; every tampering of the mutation corpus is refused by the
check it breaks, naming the fact."""

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import rfc8785
from click.testing import CliRunner

from backend.audit.chain import ChainReader
from backend.audit.commands import verify as verify_command
from backend.audit.verify import verify_manifest
from backend.deps import get_storage
from tests.audit.corpus import flip, mutations


def _run(raw: bytes, rpc: str, exports: Path | None = None):
    return verify_manifest(raw, ChainReader(rpc), exports_dir=exports)


def test_the_published_manifest_verifies_and_every_tampering_is_caught(audited, session):
    report = _run(audited["raw"], audited["rpc"])
    assert report.ok, "\n".join(report.lines())
    assert {c.id for c in report.checks if c.status == "ok"} >= {
        "manifest.form",
        "manifest.schema",
        "method.rule",
        "items.labelHash",
        "items.tree",
        "answers.hash",
        "answers.leaf",
        "answers.proof",
        "labels.recompute",
        "weights.tree",
        "chain.network",
        "chain.version",
        "chain.batches",
        "chain.consent",
        "chain.royalty",
    }
    # Any change to the bytes breaks the registered hash, so every tampering fails there too;
    # each must also fail the check it targets, naming the fact.
    caught = 0
    for name, tamper, check_id, fragment in mutations(audited, session):
        doc = json.loads(audited["raw"])
        tamper(doc)
        tampered = _run(rfc8785.dumps(doc), audited["rpc"])
        assert not tampered.ok, name
        failing = {c.id: c.failure for c in tampered.checks if c.failures}
        assert check_id in failing, f"{name}: {check_id} did not fail; failing: {failing}"
        assert fragment in (failing[check_id] or ""), f"{name}: {failing[check_id]}"
        version_fact = failing.get("chain.version") or ""
        assert "manifestHash on chain" in version_fact, f"{name}: {failing}"
        caught += 1
    assert caught == 13


def test_bytes_that_are_not_canonical_are_refused(audited):
    doc = json.loads(audited["raw"])
    spaced = json.dumps(doc, indent=1).encode()
    report = _run(spaced, audited["rpc"])
    failing = {c.id: c.failure for c in report.checks if c.failures}
    assert "not RFC 8785" in failing["manifest.form"]


def test_exports_verify_and_a_changed_file_is_named(audited, tmp_path):
    doc = json.loads(audited["raw"])
    storage = get_storage()
    for export in doc["exports"]:
        data = storage.get(export["archive"]["sha256"])
        (tmp_path / f"{export['format']}.tar").write_bytes(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp_path / export["format"], filter="data")
    report = _run(audited["raw"], audited["rpc"], tmp_path)
    assert report.ok, "\n".join(report.lines())
    status = {c.id: c.status for c in report.checks}
    assert status["exports.files"] == status["exports.labels"] == "ok"

    rows = tmp_path / "jsonl" / "data.jsonl"
    rows.write_bytes(rows.read_bytes().replace(b'"cat"', b'"dog"', 1))
    report = _run(audited["raw"], audited["rpc"], tmp_path)
    failing = {c.id: c.failure for c in report.checks if c.failures}
    assert "jsonl/: data.jsonl has SHA-256" in failing["exports.files"]


def test_the_command_exits_0_when_verified_and_1_naming_the_first_failure(audited, tmp_path):
    good = tmp_path / "manifest.json"
    good.write_bytes(audited["raw"])
    runner = CliRunner()
    result = runner.invoke(verify_command, [str(good), "--rpc", audited["rpc"]])
    assert result.exit_code == 0, result.output
    assert "verified: version" in result.output
    assert all(line.startswith(("ok", "skip", "verified")) for line in result.output.splitlines())

    doc = json.loads(audited["raw"])
    doc["batches"][0]["answers"][0]["salt"] = flip(doc["batches"][0]["answers"][0]["salt"])
    bad = tmp_path / "tampered.json"
    bad.write_bytes(rfc8785.dumps(doc))
    result = runner.invoke(verify_command, [str(bad), "--rpc", audited["rpc"], "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False
    assert report["firstFailure"]["check"] == "answers.hash"
    assert "hashes to" in report["firstFailure"]["fact"]


def test_an_unreachable_rpc_is_named(audited, tmp_path):
    path = tmp_path / "manifest.json"
    path.write_bytes(audited["raw"])
    reader = ChainReader("http://127.0.0.1:9", retries=1, sleep=lambda _s: None)
    report = verify_manifest(audited["raw"], reader)
    failing = {c.id: c.failure for c in report.checks if c.failures}
    assert "http://127.0.0.1:9" in failing["chain.read"]


def test_a_manifest_off_its_schema_is_refused_naming_where(audited):
    doc = json.loads(audited["raw"])
    del doc["items"]
    doc["batches"][0]["answers"][0]["leafIndex"] = "seven"
    report = _run(rfc8785.dumps(doc), audited["rpc"])
    schema = next(c for c in report.checks if c.id == "manifest.schema")
    assert schema.failures == 2
    assert schema.failure == 'at (the document): "items" is a required property'
    assert not any(c.id == "chain.version" for c in report.checks)  # nothing else ran


def test_a_batch_listed_twice_is_refused(audited):
    doc = json.loads(audited["raw"])
    doc["batches"].append(json.loads(json.dumps(doc["batches"][0])))
    doc["batches"].sort(key=lambda b: b["batchId"])
    report = _run(rfc8785.dumps(doc), audited["rpc"])
    proof = next(c for c in report.checks if c.id == "answers.proof")
    assert proof.failure == f"batch {doc['batches'][0]['batchId']} is listed twice"


def test_a_label_with_no_canonical_form_is_named_not_a_crash(audited):
    doc = json.loads(audited["raw"])
    doc["items"][0]["label"] = {"label": "\ud800"}
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    report = _run(raw, audited["rpc"])
    failing = {c.id: c.failure for c in report.checks if c.failures}
    assert "item 0: its label has no RFC 8785 form" in failing["items.labelHash"]


def test_a_whole_double_beyond_2_53_reads_back_as_rfc8785_wrote_it():
    from backend.audit.manifest_checks import read_manifest
    from backend.audit.report import Report

    raw = rfc8785.dumps({"x": 8.8e19})
    assert raw == b'{"x":88000000000000000000}'
    report = Report()
    read_manifest(raw, report)
    assert report.checks[0].status == "ok"  # manifest.form (the schema then refuses it)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        (b'{"x":0.00001,"y":[1,2.5,"\\u001f\\n"]}', True),
        (b'{"x":2.0}', False),  # Python's form of 2.0; RFC 8785 writes 2
        (b'{"x":1e-05}', False),  # Python's; RFC 8785 writes 0.00001
        (b'{"x":1e+21}', True),
        (b'{"x":-0}', False),
        ('{"\U0001f600":1,"\ue000":2}'.encode(), True),  # UTF-16 order: surrogates first
        ('{"\ue000":2,"\U0001f600":1}'.encode(), False),  # code point order
        (b'{"a":1,"a":2}', False),
        (b'{"a":"\\u00e9"}', False),  # an escape RFC 8785 does not write
    ],
)
def test_the_form_check_takes_the_bytes_rfc8785_writes_and_nothing_else(raw, canonical):
    from backend.audit.manifest_checks import read_manifest
    from backend.audit.report import Report

    report = Report()
    read_manifest(raw, report)
    assert (report.checks[0].status == "ok") is canonical, report.checks[0].line()


def test_export_rows_that_cannot_be_read_and_a_format_that_is_a_path_are_named(audited, tmp_path):
    doc = json.loads(audited["raw"])
    bad = tmp_path / "jsonl.tar"
    rows = b'{"index": "not a number"}\n'
    with tarfile.open(bad, "w") as tar:
        info = tarfile.TarInfo("data.jsonl")
        info.size = len(rows)
        tar.addfile(info, io.BytesIO(rows))
    jsonl = next(e for e in doc["exports"] if e["format"] == "jsonl")
    jsonl["archive"]["sha256"] = hashlib.sha256(bad.read_bytes()).hexdigest()
    doc["exports"].append({**jsonl, "format": "../outside"})
    report = _run(rfc8785.dumps(doc), audited["rpc"], tmp_path)
    failing = {c.id: c.failure for c in report.checks if c.failures}
    assert failing["exports.labels"].startswith("jsonl.tar: a row cannot be read: ValueError")
    files = next(c for c in report.checks if c.id == "exports.files")
    assert files.failure == "the manifest names an export format '../outside': not a format name"


def test_a_page_of_no_blocks_is_refused_before_any_read(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_bytes(b"{}")
    result = CliRunner().invoke(
        verify_command, [str(path), "--rpc", "http://127.0.0.1:9", "--max-blocks", "0"]
    )
    assert result.exit_code == 2
    assert "--max-blocks" in result.output and "0 is not in the range" in result.output
    with pytest.raises(ValueError, match="max_blocks is at least 1, not 0"):
        ChainReader("http://127.0.0.1:9", max_blocks=0)


def test_json_nested_too_deep_to_parse_is_named_not_a_crash(tmp_path):
    path = tmp_path / "deep.json"
    path.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    result = CliRunner().invoke(verify_command, [str(path), "--rpc", "http://127.0.0.1:9"])
    assert result.exit_code == 1, result.output
    assert (
        "NOT VERIFIED: manifest.form: not JSON this verifier reads: arrays or objects nested"
        in (result.output)
    )


def test_answers_judged_in_forked_workers_give_the_same_report(audited, session, monkeypatch):
    from backend.audit import manifest_checks
    from backend.audit.report import Report

    forks = []
    real_context = manifest_checks.multiprocessing.get_context
    monkeypatch.setattr(manifest_checks, "PARALLEL_MIN_ANSWERS", 0)
    monkeypatch.setattr(
        manifest_checks.multiprocessing,
        "get_context",
        lambda method: forks.append(method) or real_context(method),
    )
    manifests = [audited["raw"]]
    for _name, tamper, _check, _fragment in mutations(audited, session):
        doc = json.loads(audited["raw"])
        tamper(doc)
        manifests.append(rfc8785.dumps(doc))
    compared = 0
    for raw in manifests:
        lines = {}
        for jobs in (1, 2):
            report = Report()
            doc = manifest_checks.read_manifest(raw, report)
            if doc is None or len(doc["batches"]) < 2:
                break
            manifest_checks.check_manifest(doc, raw, report, lambda _n: None, jobs)
            lines[jobs] = report.lines()
        else:
            assert lines[1] == lines[2]
            compared += 1
    assert compared >= 10 and forks == ["fork"] * compared
