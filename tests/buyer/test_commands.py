"""`provenant datasets` through click's CliRunner against a stand-in API (an
httpx.MockTransport): the table, a version's summary, previews checked locally (a valid one, a
tampered label, indices the seed does not give), pulls that resume and verify, and errors
reported as the API's detail with exit status 1."""

import hashlib
import io
import json
import os
import re
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from eth_account import Account
from eth_hash.auto import keccak

from backend.buyer.commands import Options, datasets, render_table
from backend.datasets.labels import label_hash
from backend.datasets.service import sample_indices, seed_bytes
from backend.provenance.merkle import StandardMerkleTree
from tests.buyer.test_client import version_json

BUYER_KEY = "0x" + "42" * 32
BUYER = Account.from_key(BUYER_KEY)
SEED = "the buyer's own seed"
ITEM_COUNT = 12
_RANGE = re.compile(r"bytes=(\d+)-")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tar_of(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


class FakeApi:
    """The routes the buyer's commands call, answering as backend/datasets/router.py does."""

    def __init__(self) -> None:
        labels = [{"label": "cat" if i % 3 else "dog"} for i in range(ITEM_COUNT)]
        self.items = [
            {
                "content_hash": "0x" + keccak(f"item {i}".encode()).hex(),
                "label": labels[i],
                "label_hash": label_hash(labels[i]),
            }
            for i in range(ITEM_COUNT)
        ]
        self.tree = StandardMerkleTree.of(
            [[it["content_hash"], it["label_hash"]] for it in self.items], ["bytes32", "bytes32"]
        )
        self.exports = {
            "coco": {"annotations.json": b'{"images": []}', "images/0001.png": os.urandom(3000)},
            "jsonl": {"data.jsonl": b'{"label": "cat"}\n' * 500},
        }
        self.sums = {
            fmt: "".join(f"{sha256(d)}  {p}\n" for p, d in files.items()).encode()
            for fmt, files in self.exports.items()
        }
        self.archives = {
            fmt: tar_of({**files, "SHA256SUMS": self.sums[fmt]})
            for fmt, files in self.exports.items()
        }
        manifest = {
            "versionId": str((7 << 32) | 1),
            "trees": {"item": {"encoding": ["bytes32", "bytes32"], "root": self.tree.root}},
            "exports": [
                {
                    "format": fmt,
                    "archive": {"sha256": sha256(data), "bytes": len(data)},
                    "checksums": {
                        "path": "SHA256SUMS",
                        "sha256": sha256(self.sums[fmt]),
                        "bytes": len(self.sums[fmt]),
                    },
                    "files": len(self.exports[fmt]),
                }
                for fmt, data in sorted(self.archives.items())
            ],
        }
        self.manifest = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        self.version = version_json(
            id=3,
            item_root=self.tree.root,
            counts={"items": ITEM_COUNT, "answers": 36, "contributors": 4},
            manifest_hash="0x" + keccak(self.manifest).hex(),
            excluded={"items": {"low_confidence": 2}, "answers": {"no_consent": 5}},
            provenance={
                "contributors": 4,
                "answers": 36,
                "batches_anchored": 2,
                "consent_coverage": 0.878049,
                "method": "majority_vote",
            },
            formats=[
                {"format": f, "sha256": sha256(d), "bytes": len(d)}
                for f, d in sorted(self.archives.items())
            ],
        )
        # The worker's run of `provenant verify`, as GET /versions/3/verification serves it.
        self.verification: dict[str, Any] = {
            "version_id": 3,
            "status": "verified",
            "manifest_hash": "0x" + keccak(self.manifest).hex(),
            "checked_at": "2026-05-01T12:05:00Z",
            "first_failure": None,
            "checks": [
                {
                    "check": "chain.version",
                    "title": "registered",
                    "status": "ok",
                    "checked": 12,
                    "failures": 0,
                    "failure": None,
                    "skipped": None,
                },
                {
                    "check": "exports.files",
                    "title": "exports",
                    "status": "skip",
                    "checked": 0,
                    "failures": 0,
                    "failure": None,
                    "skipped": "no --exports given",
                },
            ],
            "timings": {},
        }
        self.licensed = True
        self.held: list[dict[str, Any]] = []  # what GET /me/licences lists
        self.requests: list[httpx.Request] = []
        # What a test changes to make the API misbehave.
        self.preview_changes: dict[str, Any] = {}
        self.item_changes: dict[str, Any] = {}
        self.served: dict[str, bytes] = {}  # path -> bytes served instead of the real ones

    def preview(self, seed: str, k: int) -> dict[str, Any]:
        indices = sample_indices(seed_bytes(seed), ITEM_COUNT, k)
        body: dict[str, Any] = {
            "version_id": 3,
            "seed": seed,
            "item_root": self.tree.root,
            "leaf_encoding": ["bytes32", "bytes32"],
            "rule": "index_i = uint256(keccak256(seed || uint32_be(counter))) mod itemCount",
            "indices": indices,
            "items": [
                {
                    "index": i,
                    **self.items[i],
                    "confidence": 0.75,
                    "n_answers": 3,
                    "text": None,
                    "thumbnail_url": None,
                    "proof": self.tree.proof(i),
                }
                for i in indices
            ],
        }
        body["items"][0].update(self.item_changes)
        body.update(self.preview_changes)
        return body

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/auth/nonce":
            return httpx.Response(200, json={"message": f"sign in as {BUYER.address}"})
        if path == "/auth/verify":
            return httpx.Response(200, json={"token": "t0k3n"})
        if path == "/versions":
            return httpx.Response(200, json=[self.version, version_json(id=2, title="T" * 60)])
        if path == "/versions/3":
            return httpx.Response(200, json=self.version)
        if path == "/versions/3/verification":
            return httpx.Response(200, json=self.verification)
        if path == "/versions/3/preview":
            params = request.url.params
            return httpx.Response(
                200, json=self.preview(params.get("seed", "0x" + "ee" * 32), int(params["k"]))
            )
        if path == "/me/notices":
            return httpx.Response(200, json=[])
        if path == "/me/licences":
            return httpx.Response(200, json=self.held)
        if path == "/versions/3/licence-plan":
            tx = {"chain_id": 31337, "data": "0x", "value": "0"}
            return httpx.Response(
                200,
                json={
                    "chain_version_id": self.version["chain_version_id"],
                    "price": self.version["price"],
                    "token": self.version["token"],
                    "transactions": [
                        {**tx, "description": "allow 1000000", "to": self.version["token"]},
                        {**tx, "description": "buy", "to": self.version["marketplace"]},
                    ],
                },
            )
        if path == "/versions/3/manifest":
            return self.blob(request, self.manifest)
        if path.startswith("/versions/3/exports/"):
            fmt = path.rsplit("/", 1)[1]
            if fmt not in self.archives:
                return httpx.Response(404, json={"type": "NotFound", "detail": f"no {fmt!r}"})
            return self.blob(request, self.archives[fmt])
        return httpx.Response(404, json={"type": "NotFound", "detail": f"no route {path}"})

    def blob(self, request: httpx.Request, data: bytes) -> httpx.Response:
        if request.headers.get("authorization") != "Bearer t0k3n":
            return httpx.Response(401, json={"type": "Unauthorized", "detail": "sign in first"})
        if not self.licensed:
            return httpx.Response(
                403,
                json={
                    "type": "Forbidden",
                    "detail": f"{BUYER.address} holds no licence for dataset version 3: "
                    "license it first (GET /versions/3/licence-plan)",
                },
            )
        digest = sha256(data)
        body = self.served.get(request.url.path, data)
        headers = {"X-Content-SHA256": digest}
        match = _RANGE.fullmatch(request.headers.get("range", ""))
        if match:
            start = int(match[1])
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            return httpx.Response(206, content=body[start:], headers=headers)
        return httpx.Response(200, content=body, headers=headers)


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


def run(api: FakeApi, *args: str, key: bool = False) -> Result:
    env = {"PROVENANT_KEY": BUYER_KEY} if key else {"PROVENANT_KEY": ""}
    return CliRunner().invoke(
        datasets, list(args), obj=Options(transport=httpx.MockTransport(api)), env=env
    )


def test_list_renders_the_catalogue_as_a_table(api: FakeApi) -> None:
    result = run(api, "list")

    assert result.exit_code == 0, result.output
    header, rule, first, second = result.output.splitlines()
    assert header.split() == [
        "id", "project", "version", "title", "task", "type", "items", "scope", "price", "token",
        "status",
    ]  # fmt: skip
    assert set(rule.replace(" ", "")) == {"-"}
    assert first.split()[:4] == ["3", "7", "1", "Cats"]
    assert "0x7777...7777" in first and "1000000" in first and "published" in first
    assert ("T" * 29 + "...") in second and "T" * 33 not in second


def test_list_json_is_the_apis_list_after_the_subcommand_too(api: FakeApi) -> None:
    result = run(api, "list", "--json", "--limit", "2")

    assert result.exit_code == 0, result.output
    assert [v["id"] for v in json.loads(result.output)] == [3, 2]
    assert api.requests[0].url.params["limit"] == "2"


def test_render_table_pads_columns_and_right_aligns_numbers() -> None:
    assert render_table(["id", "name"], [[7, "a"], [12, "longer"]]).splitlines() == [
        "id  name",
        "--  ------",
        " 7  a",
        "12  longer",
    ]


def test_show_prints_terms_counts_exclusions_roots_and_provenance(api: FakeApi) -> None:
    result = run(api, "show", "3")

    assert result.exit_code == 0, result.output
    out = result.output
    for expected in (
        "Cats and dogs — project 7, version 1 (id 3)",
        "use (consent scope)  commercial_ai_training",
        "licence              CC-BY-4.0",
        "price                1000000 (token base units)",
        "platform fee 5.00%, requester 45.00%, contributors' pool 50.00%",
        "items.low_confidence  2",
        "answers.no_consent    5",
        f"item root         {api.tree.root}",
        f"chain version id  {(7 << 32) | 1}",
        "batches anchored  2",
        "consent coverage  87.80% of the answers considered",
        "coco",
        "VERIFIED at 2026-05-01 12:05:00 UTC (rerun it: provenant verify)",
        "ok    chain.version (12 checked)",
        "skip  exports.files (0 checked) (no --exports given)",
    ):
        assert expected in out, expected


def test_show_names_a_failed_verification_and_its_first_fact(api: FakeApi) -> None:
    api.verification["status"] = "failed"
    api.verification["first_failure"] = "chain.consent: consent 0xab.. is not on chain"
    check = api.verification["checks"][0]
    check.update(status="FAIL", failures=1, failure="version 3: manifestHash on chain is 0x00")
    result = run(api, "show", "3", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["verification"]["status"] == "failed"
    text = run(api, "show", "3").output
    assert "FAILED at 2026-05-01" in text
    assert "FAIL  chain.version (12 checked): version 3: manifestHash on chain is 0x00" in text
    assert "first failure: chain.consent: consent 0xab.. is not on chain" in text


def test_a_valid_preview_checks_out(api: FakeApi) -> None:
    result = run(api, "preview", "3", "--seed", SEED, "--k", "4")

    assert result.exit_code == 0, result.output
    indices = sample_indices(SEED.encode(), ITEM_COUNT, 4)
    assert result.output.count("[ok]") == 4
    assert "proofs: 4 of 4 items verified against the item root" in result.output
    assert f"indices recomputed from the seed: {indices}" in result.output
    assert result.output.rstrip().endswith("every check passed")
    assert api.requests[-1].url.params["seed"] == SEED


def test_a_preview_drawn_from_the_apis_block_hash_checks_out(api: FakeApi) -> None:
    result = run(api, "--json", "preview", "3")

    assert result.exit_code == 0, result.output
    checked = json.loads(result.output)
    assert checked["preview"]["seed"] == "0x" + "ee" * 32
    assert checked["checks"]["expected_indices"] == sample_indices(b"\xee" * 32, ITEM_COUNT, 5)
    assert checked["checks"]["ok"] is True


def test_a_preview_with_a_tampered_label_fails(api: FakeApi) -> None:
    api.item_changes = {"label": {"label": "horse"}}  # the label hash still says otherwise

    result = run(api, "preview", "3", "--seed", SEED)

    assert result.exit_code == 1
    assert result.output.count("[FAILED]") == 1
    assert "the label shown hashes to 0x" in result.output
    assert "its proof does not lead" not in result.output
    assert "did NOT check out" in result.output


def test_a_preview_whose_label_and_hash_were_both_replaced_fails_its_proof(api: FakeApi) -> None:
    horse = {"label": "horse"}
    api.item_changes = {"label": horse, "label_hash": label_hash(horse)}

    result = run(api, "preview", "3", "--seed", SEED, "--json")

    assert result.exit_code == 1
    checks = json.loads(result.output)["checks"]
    assert checks["ok"] is False
    assert checks["items"][0]["problems"] == ["its proof does not lead to the item root"]
    assert all(item["ok"] for item in checks["items"][1:])


def test_a_preview_of_items_the_seed_does_not_give_fails(api: FakeApi) -> None:
    chosen = [0, 1, 2, 3, 4]  # valid items with valid proofs, but picked, not drawn
    api.preview_changes = {
        "indices": chosen,
        "items": [
            {
                "index": i,
                **api.items[i],
                "confidence": 1.0,
                "n_answers": 3,
                "text": None,
                "thumbnail_url": None,
                "proof": api.tree.proof(i),
            }
            for i in chosen
        ],
    }

    result = run(api, "preview", "3", "--seed", SEED)

    assert result.exit_code == 1
    assert result.output.count("[ok]") == 5
    assert "FAILED: the indices [0, 1, 2, 3, 4] are not the ones the seed gives" in result.output


def test_a_preview_against_another_root_fails(api: FakeApi) -> None:
    other = StandardMerkleTree.of([["0x" + "01" * 32, "0x" + "02" * 32]], ["bytes32", "bytes32"])
    api.version["item_root"] = other.root

    result = run(api, "preview", "3", "--seed", SEED)

    assert result.exit_code == 1
    assert "is not the version's registered item root" in result.output


def test_pull_downloads_verifies_and_extracts_every_format(api: FakeApi, tmp_path: Path) -> None:
    out = tmp_path / "data"

    result = run(api, "pull", "3", "--out", str(out), "--extract", key=True)

    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").read_bytes() == api.manifest
    for fmt, archive in api.archives.items():
        assert (out / f"{fmt}.tar").read_bytes() == archive
        for path, data in api.exports[fmt].items():
            assert (out / fmt / path).read_bytes() == data
    assert "keccak256 matches the registered hash" in result.output
    assert not list(out.glob("*.part"))

    again = run(api, "pull", "3", "--out", str(out), "--format", "jsonl", key=True)
    assert again.exit_code == 0, again.output
    assert "manifest.json: already here" in again.output
    assert "jsonl.tar: already here" in again.output
    assert "coco" not in again.output


def test_pull_resumes_a_partial_export(api: FakeApi, tmp_path: Path) -> None:
    archive = api.archives["coco"]
    (tmp_path / "coco.tar.part").write_bytes(archive[:1000])

    result = run(api, "pull", "3", "--out", str(tmp_path), "--format", "coco", "--json", key=True)

    assert result.exit_code == 0, result.output
    ranges = [r.headers.get("range") for r in api.requests if "exports" in r.url.path]
    assert ranges == ["bytes=1000-"]
    assert json.loads(result.output)["exports"] == [
        {
            "format": "coco",
            "path": str(tmp_path / "coco.tar"),
            "sha256": sha256(archive),
            "resumed_from": 1000,
        }
    ]
    assert (tmp_path / "coco.tar").read_bytes() == archive


def test_pull_of_an_archive_that_does_not_match_the_manifest_fails_and_removes_it(
    api: FakeApi, tmp_path: Path
) -> None:
    good = api.archives["coco"]
    bad = good[:-1] + bytes([good[-1] ^ 0xFF])
    api.served["/versions/3/exports/coco"] = bad

    result = run(api, "pull", "3", "--out", str(tmp_path), "--format", "coco", key=True)

    assert result.exit_code == 1
    assert f"coco.tar: SHA-256 is {sha256(bad)}, but the manifest lists {sha256(good)}" in (
        result.output
    )
    assert not (tmp_path / "coco.tar").exists() and not (tmp_path / "coco.tar.part").exists()
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_pull_of_a_manifest_that_is_not_the_registered_one_fails(
    api: FakeApi, tmp_path: Path
) -> None:
    api.version["manifest_hash"] = "0x" + "00" * 32

    result = run(api, "pull", "3", "--out", str(tmp_path), key=True)

    assert result.exit_code == 1
    assert "manifest.json: keccak256 is" in result.output
    assert "the version was registered with 0x" + "00" * 32 in result.output
    assert not (tmp_path / "manifest.json").exists()


def test_pull_of_an_unknown_format_names_the_ones_there_are(api: FakeApi, tmp_path: Path) -> None:
    result = run(api, "pull", "3", "--out", str(tmp_path), "--format", "voc", key=True)

    assert result.exit_code == 1
    assert "the manifest lists no 'voc' export; it lists: coco, jsonl" in result.output


def test_a_403_prints_the_apis_detail_without_a_traceback(api: FakeApi, tmp_path: Path) -> None:
    api.licensed = False

    result = run(api, "pull", "3", "--out", str(tmp_path), key=True)

    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: {BUYER.address} holds no licence for dataset version 3: license it first "
        "(GET /versions/3/licence-plan) (HTTP 403)"
    )
    assert isinstance(result.exception, SystemExit)


def test_an_unreachable_api_is_named(tmp_path: Path) -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    result = CliRunner().invoke(
        datasets,
        ["--api", "http://127.0.0.1:9", "list"],
        obj=Options(transport=httpx.MockTransport(refused)),
    )

    assert result.exit_code == 1
    assert "Error: the API is unreachable at http://127.0.0.1:9" in result.output
    assert isinstance(result.exception, SystemExit)


def test_commands_that_sign_in_ask_for_a_key(api: FakeApi) -> None:
    result = run(api, "notices")

    assert result.exit_code == 2
    assert "pass --key-file PATH" in result.output


def test_a_key_file_signs_in_and_a_bad_key_is_not_echoed(api: FakeApi, tmp_path: Path) -> None:
    key_file = tmp_path / "buyer.key"
    key_file.write_text(BUYER_KEY + "\n")
    assert run(api, "--key-file", str(key_file), "notices").output == "no notices\n"

    key_file.write_text("not-a-key-0123")
    result = run(api, "notices", "--key-file", str(key_file))
    assert result.exit_code == 1
    assert "does not hold a private key" in result.output
    assert "not-a-key-0123" not in result.output


def test_license_sends_the_plan_after_confirmation_then_waits_for_the_mirror(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.buyer import client

    sent: list[Any] = []

    def send_plan(rpc: str, account: Any, plan: Any, version: Any, *, log: Any) -> list[Any]:
        sent.append((rpc, account.address, [tx.description for tx in plan.transactions]))
        api.held = [api.version]  # the mirror has seen the sale
        return [client.Sent("buy", "0x" + "55" * 32)]

    monkeypatch.setattr(client, "send_plan", send_plan)

    declined = CliRunner().invoke(
        datasets,
        ["license", "3"],
        obj=Options(transport=httpx.MockTransport(api)),
        env={"PROVENANT_KEY": BUYER_KEY},
        input="n\n",
    )
    assert declined.exit_code == 1 and "Aborted" in declined.output and sent == []
    assert "price 1000000 base units of token 0x7777777777777777777777777777777777777777" in (
        declined.output
    )

    result = run(api, "--rpc", "http://rpc.test", "license", "3", "--yes", key=True)
    assert result.exit_code == 0, result.output
    assert sent == [("http://rpc.test", BUYER.address, ["allow 1000000", "buy"])]
    assert "licensed: version 3" in result.output

    again = run(api, "license", "3", "--yes", key=True)
    assert again.exit_code == 0 and "already holds a licence for version 3" in again.output
    assert len(sent) == 1
