"""The JavaScript verifier (frontend/verifier) against the Python one, on the version of
tests/audit/corpus.py: the untampered manifest verifies under both, both refuse every
tampering of the mutation corpus (the JavaScript by the check it targets when it has that
check), and the two reports agree, check by check, on every case."""

import copy
import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from backend.audit.chain import ChainReader
from backend.audit.verify import verify_manifest
from backend.provenance.leaf import ContributionLeaf, answer_hash
from tests.audit.corpus import mutations

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = REPO_ROOT / "frontend" / "verifier" / "cli.mjs"
NODE = shutil.which("node")
PACKAGES = ("ethers", "@openzeppelin/merkle-tree", "canonicalize")
MISSING = [p for p in PACKAGES if not (REPO_ROOT / "node_modules" / p / "package.json").is_file()]

if NODE is None:
    pytest.skip(
        "node is not installed: the JavaScript verifier runs under it", allow_module_level=True
    )
if MISSING:
    pytest.skip(
        f"node_modules lacks {', '.join(MISSING)}: run npm ci at the repository root",
        allow_module_level=True,
    )

# The checks both verifiers have: the JavaScript one leaves method.rule, labels.recompute,
# manifest.schema and the exports to the Python one.
SHARED = {
    "manifest.form",
    "items.labelHash",
    "items.tree",
    "answers.hash",
    "answers.leaf",
    "answers.proof",
    "weights.tree",
    "chain.network",
    "chain.version",
    "chain.batches",
    "chain.consent",
    "chain.royalty",
    "chain.read",
}


def _js(raw: bytes, rpc: str, path: Path, *options: str) -> tuple[int, str]:
    path.write_bytes(raw)
    done = subprocess.run(
        [NODE, str(CLI), str(path), "--rpc", rpc, *options],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # 0 verified, 1 refused, and a report either way: anything else is the verifier failing
    assert done.returncode in (0, 1) and done.stdout, done.stderr
    return done.returncode, done.stdout


def _js_report(raw: bytes, rpc: str, path: Path) -> tuple[int, dict[str, Any]]:
    code, out = _js(raw, rpc, path, "--json")
    return code, json.loads(out)


def _shared(checks: list[dict[str, Any]]) -> dict[str, tuple[str, int, int]]:
    """Each shared check's status and counts: two verifiers reading the same facts check as
    many of them and find the same number failing."""
    return {
        c["check"]: (c["status"], c["checked"], c["failures"])
        for c in checks
        if c["check"] in SHARED
    }


def _legacy_answer(doc: dict[str, Any]) -> None:
    """An answer made unsalted, with its legacy commitment: what the JavaScript must
    reproduce (NFC, keys by code point, Python's float repr). The leaf then no longer holds."""
    answer = doc["batches"][0]["answers"][0]
    answer["answer"] = {
        **answer["answer"],
        "note": "cafe\u0301 \u2028\x01\n",
        "x": 1e-05,
        "y": 0.1,
        "big": 1e21,
        "n": [-0.5, 3, True, None],
        "\ufb01": 1,
        "\U0001f600": 2,
    }
    answer["salt"] = None
    answer["answerHash"] = answer_hash(answer["answer"], None)


def _spaced(raw: bytes) -> bytes:
    return json.dumps(json.loads(raw), indent=1).encode()


def test_both_verifiers_agree_on_the_manifest_and_every_tampering(
    audited, session, tmp_path, record_property
):
    rpc = audited["rpc"]
    corpus = mutations(audited, session)
    cases: list[tuple[str, bytes, str | None, str | None]] = [
        ("the published manifest", audited["raw"], None, None)
    ]
    for name, tamper, check_id, fragment in corpus:
        doc = json.loads(audited["raw"])
        tamper(doc)
        cases.append((name, rfc8785.dumps(doc), check_id, fragment))
    legacy = json.loads(audited["raw"])
    _legacy_answer(legacy)
    cases.append(("a legacy unsalted answer", rfc8785.dumps(legacy), "answers.leaf", "encode leaf"))
    cases.append(
        ("bytes not in RFC 8785 form", _spaced(audited["raw"]), "manifest.form", "not RFC")
    )

    caught: list[str] = []
    statuses: dict[str, dict[str, str]] = {}
    for n, (name, raw, check_id, fragment) in enumerate(cases):
        python = verify_manifest(raw, ChainReader(rpc)).as_json()
        code, js = _js_report(raw, rpc, tmp_path / f"case-{n}.json")
        statuses[name] = {c["check"]: c["status"] for c in js["checks"]}
        assert _shared(js["checks"]) == _shared(python["checks"]), name
        assert (js["versionId"], js["manifestHash"]) == (
            python["versionId"],
            python["manifestHash"],
        ), name
        if check_id is None:
            assert python["ok"] and js["ok"] and code == 0, (name, js["firstFailure"])
            assert {c["status"] for c in js["checks"]} == {"ok"}, name
            code, text = _js(raw, rpc, tmp_path / "text.json")
            lines = text.splitlines()
            assert code == 0 and lines[-1].startswith("verified: version"), text
            assert all(line.startswith("ok    ") for line in lines[:-1]), text
            continue
        assert not python["ok"] and not js["ok"] and code == 1, name
        failing = {c["check"]: c["failure"] or "" for c in js["checks"] if c["failures"]}
        if check_id in SHARED:
            assert check_id in failing, f"{name}: {check_id} did not fail; failing: {failing}"
            assert fragment in failing[check_id], f"{name}: {failing[check_id]}"
        assert "manifestHash on chain" in failing.get("chain.version", ""), f"{name}: {failing}"
        caught.append(name)

    assert statuses["a legacy unsalted answer"]["answers.hash"] == "ok", "legacy hash differs"
    in_corpus = [name for name in caught if name in {m[0] for m in corpus}]
    record_property("js_verifier_corpus_mutations_caught", len(in_corpus))
    print(
        f"JS verifier: {len(in_corpus)} of {len(corpus)} corpus mutations and "
        f"{len(caught) - len(in_corpus)} more tamperings refused, agreeing with the Python one"
    )
    assert len(in_corpus) == len(corpus) == 13 and len(caught) == 15


def test_an_answer_in_a_batch_listed_twice_and_an_unreachable_rpc_are_refused(audited, tmp_path):
    """An answer never anchored, in a second listing of a real batch's id whose root is its
    own leaf, proves against that listing's root: chain.batches must compare every listing's
    root with the chain's, not one root per id."""
    doc = json.loads(audited["raw"])
    real = doc["batches"][0]
    forged = copy.deepcopy(real["answers"][0])
    forged["submittedAt"] += 1
    forged["leafHash"] = ContributionLeaf(
        contributor=forged["contributor"],
        project_id=doc["project"]["id"],
        item_hash=doc["items"][forged["item"]]["contentHash"],
        answer_hash=forged["answerHash"],
        consent_hash=forged["consentHash"],
        submitted_at=forged["submittedAt"],
    ).hash()
    forged["proof"] = []  # a one-leaf tree: the leaf is the root
    doc["batches"].insert(
        0,
        {
            "batchId": real["batchId"],
            "root": forged["leafHash"],
            "txHash": None,
            "answers": [forged],
        },
    )
    code, js = _js_report(rfc8785.dumps(doc), audited["rpc"], tmp_path / "twice.json")
    status = {c["check"]: c["status"] for c in js["checks"]}
    assert code == 1 and status["answers.proof"] == "ok", js["checks"]
    batches = next(c for c in js["checks"] if c["check"] == "chain.batches")
    assert f"batch {real['batchId']}: ProvenanceRegistry holds root" in batches["failure"]

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    path = tmp_path / "manifest.json"
    code, out = _js(audited["raw"], closed, path, "--json", "--retries", "0")
    failing = {c["check"]: c["failure"] for c in json.loads(out)["checks"] if c["failures"]}
    assert code == 1 and list(failing) == ["chain.read"], failing
    assert f"eth_chainId at {closed}" in failing["chain.read"]
