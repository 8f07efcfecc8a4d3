"""The buyer's client over an httpx.MockTransport: range-resumed downloads and their digests,
safe extraction, sign-in, API errors, waiting for the licence mirror, and plan checks.

The API's side of these routes is tested in tests/datasets; here the server is a stand-in
that serves bytes the way backend/datasets/router.py does (206 with Content-Range, 416 past
the end, X-Content-SHA256 on every reply)."""

import hashlib
import io
import os
import re
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_hash.auto import keccak

from backend.buyer.client import (
    ApiError,
    ApiUnreachable,
    BuyerClient,
    BuyerError,
    DigestMismatch,
    UnsafeArchive,
    check_plan,
    extract,
    file_digests,
)
from backend.datasets.models import LicencePlan, UnsignedTx, VersionPublic

API = "http://api.test"
BUYER = Account.from_key("0x" + "42" * 32)
_RANGE = re.compile(r"bytes=(\d+)-")

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler) -> BuyerClient:
    return BuyerClient(API, transport=httpx.MockTransport(handler))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def serve(
    data: bytes, *, digest: str | None = None, honour_range: bool = True
) -> tuple[Handler, list[httpx.Request]]:
    """A route serving ``data`` with Range support, as the API's download routes do."""
    seen: list[httpx.Request] = []
    served_digest = digest or sha256(data)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        headers = {"X-Content-SHA256": served_digest, "Accept-Ranges": "bytes"}
        header = request.headers.get("range")
        if header and honour_range:
            match = _RANGE.fullmatch(header)
            assert match is not None, header
            start = int(match[1])
            if start >= len(data):
                return httpx.Response(416, json={"type": "RangeNotSatisfiable", "detail": "out"})
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            return httpx.Response(206, content=data[start:], headers=headers)
        return httpx.Response(200, content=data, headers=headers)

    return handler, seen


def test_resume_sends_the_range_after_the_partial_file_and_ends_with_the_right_digest(
    tmp_path: Path,
) -> None:
    data = os.urandom(3_000_000)
    dest = tmp_path / "coco.tar"
    (tmp_path / "coco.tar.part").write_bytes(data[:1_234_567])
    handler, seen = serve(data)
    bars: list[tuple[str, int, int | None]] = []

    class Bar:
        def __init__(self, name: str, done: int, total: int | None) -> None:
            bars.append((name, done, total))
            self.n = done

        def update(self, n: int) -> None:
            self.n += n

        def close(self) -> None:
            assert self.n == len(data)

    with client_for(handler) as client:
        got = client.download(
            "/versions/1/exports/coco", dest, sha256=sha256(data), size=len(data), progress=Bar
        )

    assert [r.headers.get("range") for r in seen] == ["bytes=1234567-"]
    assert dest.read_bytes() == data
    assert got.sha256 == sha256(data) and got.bytes == len(data)
    assert got.resumed_from == 1_234_567
    assert not (tmp_path / "coco.tar.part").exists()
    assert bars == [("coco.tar", 1_234_567, len(data))]


def test_a_wrong_digest_fails_names_both_digests_and_removes_the_part(tmp_path: Path) -> None:
    listed = os.urandom(100_000)
    corrupt = bytearray(listed)
    corrupt[70_000] ^= 1  # the stored blob rotted; the API still announces the right digest
    dest = tmp_path / "yolo.tar"
    (tmp_path / "yolo.tar.part").write_bytes(bytes(corrupt[:50_000]))
    handler, seen = serve(bytes(corrupt), digest=sha256(listed))

    with client_for(handler) as client, pytest.raises(DigestMismatch) as failed:
        client.download("/x", dest, sha256=sha256(listed), size=len(listed))

    assert seen[0].headers["range"] == "bytes=50000-"
    message = str(failed.value)
    assert "yolo.tar" in message
    assert sha256(listed) in message and sha256(bytes(corrupt)) in message
    assert not (tmp_path / "yolo.tar.part").exists()
    assert not dest.exists()


def test_an_archive_the_api_serves_under_another_digest_is_refused_before_reading_it(
    tmp_path: Path,
) -> None:
    handler, _ = serve(b"other bytes")
    (tmp_path / "a.tar.part").write_bytes(b"other")
    expected = sha256(b"the manifest's bytes")

    with client_for(handler) as client, pytest.raises(DigestMismatch) as failed:
        client.download("/x", tmp_path / "a.tar", sha256=expected, size=100)

    assert expected in str(failed.value) and sha256(b"other bytes") in str(failed.value)
    assert not (tmp_path / "a.tar.part").exists()


def test_without_a_listed_digest_the_api_header_is_checked_and_the_keccak_too(
    tmp_path: Path,
) -> None:
    data = b'{"manifest":true}' * 1000
    handler, _ = serve(data)
    registered = "0x" + keccak(data).hex()

    with client_for(handler) as client:
        got = client.download("/m", tmp_path / "manifest.json", keccak256=registered)
        assert got.sha256 == sha256(data)
        assert file_digests(tmp_path / "manifest.json") == (sha256(data), registered)

        lying, _ = serve(data, digest=sha256(b"something else"))
        with pytest.raises(DigestMismatch, match="X-Content-SHA256"):
            client_for(lying).download("/m", tmp_path / "m2.json")
        assert not (tmp_path / "m2.json.part").exists()

        with pytest.raises(DigestMismatch, match="the version was registered with"):
            client.download("/m", tmp_path / "m3.json", keccak256="0x" + "00" * 32)
        assert not (tmp_path / "m3.json").exists() and not (tmp_path / "m3.json.part").exists()


def test_a_partial_file_as_long_as_the_file_is_fetched_again_after_a_416(tmp_path: Path) -> None:
    data = os.urandom(5000)
    (tmp_path / "manifest.json.part").write_bytes(os.urandom(5000))
    handler, seen = serve(data)

    with client_for(handler) as client:
        client.download("/m", tmp_path / "manifest.json")

    assert [r.headers.get("range") for r in seen] == ["bytes=5000-", None]
    assert (tmp_path / "manifest.json").read_bytes() == data


def test_a_whole_file_answered_to_a_range_request_replaces_the_partial_file(
    tmp_path: Path,
) -> None:
    data = os.urandom(10_000)
    (tmp_path / "a.tar.part").write_bytes(b"x" * 4000)
    handler, _ = serve(data, honour_range=False)

    with client_for(handler) as client:
        got = client.download("/a", tmp_path / "a.tar", sha256=sha256(data), size=len(data))

    assert (tmp_path / "a.tar").read_bytes() == data and got.bytes == len(data)


def test_a_complete_partial_file_is_checked_without_a_request(tmp_path: Path) -> None:
    data = os.urandom(2048)
    (tmp_path / "a.tar.part").write_bytes(data)

    def no_request(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected {request.method} {request.url}")

    with client_for(no_request) as client:
        got = client.download("/a", tmp_path / "a.tar", sha256=sha256(data), size=len(data))

    assert got.resumed_from == len(data) and (tmp_path / "a.tar").read_bytes() == data


class _Dropping(httpx.SyncByteStream):
    """A body that stops after ``keep`` bytes, as a dropped connection does."""

    def __init__(self, data: bytes, keep: int) -> None:
        self.data, self.keep = data, keep

    def __iter__(self) -> Iterator[bytes]:
        yield self.data[: self.keep]
        raise httpx.ReadError("connection reset by peer")


def test_a_dropped_download_keeps_its_part_and_the_next_call_resumes_it(tmp_path: Path) -> None:
    data = os.urandom(400_000)
    calls: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("range"))
        if len(calls) == 1:
            return httpx.Response(
                200, headers={"X-Content-SHA256": sha256(data)}, stream=_Dropping(data, 150_000)
            )
        return serve(data)[0](request)

    with client_for(handler) as client:
        with pytest.raises(ApiUnreachable, match="stopped at byte 150000"):
            client.download("/a", tmp_path / "a.tar", sha256=sha256(data), size=len(data))
        assert (tmp_path / "a.tar.part").stat().st_size == 150_000
        client.download("/a", tmp_path / "a.tar", sha256=sha256(data), size=len(data))

    assert calls == [None, "bytes=150000-"]
    assert (tmp_path / "a.tar").read_bytes() == data


# --- extraction -------------------------------------------------------------------------


def make_tar(path: Path, members: dict[str, bytes], *, links: dict[str, str] | None = None) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)


@pytest.mark.parametrize(
    ("members", "links"),
    [
        ({"ok.txt": b"fine", "../x": b"escape"}, None),
        ({"data/../../x": b"escape"}, None),
        ({"/tmp/x": b"absolute"}, None),
        ({"ok.txt": b"fine"}, {"data/link": "../../outside"}),
    ],
)
def test_an_archive_with_a_member_leading_out_is_refused_before_anything_is_written(
    tmp_path: Path, members: dict[str, bytes], links: dict[str, str] | None
) -> None:
    archive = tmp_path / "evil.tar"
    make_tar(archive, members, links=links)
    dest = tmp_path / "out" / "coco"

    with pytest.raises(UnsafeArchive, match="evil.tar: refusing"):
        extract(archive, dest)

    assert list(dest.iterdir()) == []
    assert not (tmp_path / "x").exists() and not (tmp_path / "out" / "x").exists()


def test_extraction_checks_each_file_against_the_checksums_the_manifest_vouches_for(
    tmp_path: Path,
) -> None:
    files = {"annotations.json": b"{}", "images/0001.png": b"\x89PNG..."}
    sums = "".join(f"{sha256(d)}  {p}\n" for p, d in files.items()).encode()
    archive = tmp_path / "coco.tar"
    make_tar(archive, {**files, "SHA256SUMS": sums})

    assert extract(archive, tmp_path / "coco", checksums_sha256=sha256(sums)) == 3
    assert (tmp_path / "coco" / "images" / "0001.png").read_bytes() == b"\x89PNG..."

    with pytest.raises(BuyerError, match="SHA256SUMS has SHA-256 .* the manifest gives"):
        extract(archive, tmp_path / "again", checksums_sha256="0" * 64)

    forged = tmp_path / "forged.tar"
    make_tar(forged, {**files, "images/0001.png": b"other", "SHA256SUMS": sums})
    with pytest.raises(BuyerError, match="images/0001.png has SHA-256"):
        extract(forged, tmp_path / "forged", checksums_sha256=sha256(sums))


# --- the API's answers ------------------------------------------------------------------


def test_an_http_error_carries_the_apis_detail() -> None:
    detail = "0xabc holds no licence for dataset version 3: license it first"

    def forbidden(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"type": "Forbidden", "detail": detail})

    with client_for(forbidden) as client, pytest.raises(ApiError) as failed:
        client.notices()
    assert failed.value.status_code == 403 and failed.value.detail == detail
    assert str(failed.value) == f"{detail} (HTTP 403)"


def test_an_error_streamed_download_carries_the_apis_detail(tmp_path: Path) -> None:
    def forbidden(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"type": "Forbidden", "detail": "no licence"})

    with client_for(forbidden) as client, pytest.raises(ApiError, match="no licence"):
        client.download("/versions/3/manifest", tmp_path / "manifest.json")
    assert not (tmp_path / "manifest.json.part").exists()


def test_a_refused_connection_says_the_api_is_unreachable() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with client_for(refused) as client, pytest.raises(ApiUnreachable) as failed:
        client.versions()
    assert str(failed.value).startswith(f"the API is unreachable at {API}")


def test_an_answer_of_the_wrong_shape_is_a_buyer_error() -> None:
    def odd(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"id": "not a version"}])

    with client_for(odd) as client, pytest.raises(BuyerError, match="not a VersionPublic"):
        client.versions()


def test_sign_in_signs_the_apis_message_and_sends_the_token_after() -> None:
    message = f"localhost:8000 wants you to sign in with your Ethereum account:\n{BUYER.address}"
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/auth/nonce":
            assert request.url.params["address"] == BUYER.address
            return httpx.Response(200, json={"nonce": "n", "message": message})
        if request.url.path == "/auth/verify":
            body = httpx.Response(200, content=request.content).json()
            signer = Account.recover_message(
                encode_defunct(text=body["message"]), signature=body["signature"]
            )
            assert signer == BUYER.address
            return httpx.Response(200, json={"token": "t0k3n", "address": signer})
        assert request.headers["authorization"] == "Bearer t0k3n"
        return httpx.Response(200, json=[])

    with client_for(handler) as client:
        assert client.sign_in(BUYER) == BUYER.address
        assert client.notices() == []
    assert [r.url.path for r in seen] == ["/auth/nonce", "/auth/verify", "/me/notices"]


def test_sign_in_refuses_a_message_for_another_address() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"message": "sign in as 0x" + "1" * 40})

    with client_for(handler) as client, pytest.raises(BuyerError, match="not signing it"):
        client.sign_in(BUYER)


def version_json(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": 3,
        "project_id": 7,
        "version": 1,
        "status": "published",
        "title": "Cats and dogs",
        "task_type": "image_classification",
        "scope": "commercial_ai_training",
        "license_spdx": "CC-BY-4.0",
        "license_terms_hash": "0x" + "ab" * 32,
        "price": "1000000",
        "token": "0x" + "7" * 40,
        "split": {"fee_bps": 500, "requester_bps": 4500, "pool_bps": 5000},
        "supersedes": None,
        "changes": None,
        "published_at": "2026-05-01T12:00:00Z",
        "stage": "done",
        "progress": {"done": 10, "total": 10},
        "error": None,
        "counts": {"items": 10, "answers": 30, "contributors": 4},
        "excluded": {},
        "method": None,
        "item_root": "0x" + "11" * 32,
        "weight_root": "0x" + "22" * 32,
        "total_weight": "30",
        "manifest_hash": "0x" + "33" * 32,
        "chain_version_id": str((7 << 32) | 1),
        "marketplace": "0x" + "9" * 40,
        "chain_id": 31337,
        "tx_hash": "0x" + "44" * 32,
        "formats": [],
        "public_manifest": False,
        "provenance": {},
    }
    body.update(changes)
    return body


def test_waiting_for_the_licence_polls_until_the_mirror_lists_it() -> None:
    answers = [[], [], [version_json(id=9)], [version_json(id=9), version_json()]]
    naps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answers.pop(0))

    with client_for(handler) as client:
        held = client.wait_for_licence(3, timeout=60, interval=0.5, sleep=naps.append)
    assert held.id == 3 and naps == [0.5, 0.5, 0.5] and answers == []


def test_waiting_for_the_licence_gives_up_at_the_deadline_with_a_clear_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[])

    with client_for(handler) as client, pytest.raises(BuyerError) as failed:
        client.wait_for_licence(3, timeout=0, sleep=lambda _s: None)
    assert "has not shown the licence for version 3 after 0 s" in str(failed.value)


# --- licence plans ----------------------------------------------------------------------


def plan(**changes: Any) -> LicencePlan:
    version = VersionPublic.model_validate(version_json())
    transactions = [
        UnsignedTx(description="approve", chain_id=31337, to=version.token, data="0x01"),
        UnsignedTx(description="buy", chain_id=31337, to=version.marketplace or "", data="0x02"),
    ]
    body: dict[str, Any] = {
        "chain_version_id": version.chain_version_id,
        "price": version.price,
        "token": version.token,
        "transactions": transactions,
    }
    body.update(changes)
    return LicencePlan(**body)


def test_a_plan_for_the_version_on_the_rpcs_chain_passes() -> None:
    check_plan(plan(), VersionPublic.model_validate(version_json()), 31337)


@pytest.mark.parametrize(
    ("changes", "chain_id", "message"),
    [
        ({}, 1, "pass --rpc for chain 31337"),
        ({"price": "1"}, 31337, "costs 1000000"),
        ({"chain_version_id": "5"}, 31337, "buys chain version 5"),
        (
            {
                "transactions": [
                    UnsignedTx(description="buy", chain_id=31337, to="0x" + "6" * 40, data="0x")
                ]
            },
            31337,
            "not the marketplace",
        ),
        (
            {
                "transactions": [
                    UnsignedTx(
                        description="pay", chain_id=31337, to="0x" + "9" * 40, data="0x", value="1"
                    )
                ]
            },
            31337,
            "would send 1 wei",
        ),
    ],
)
def test_a_plan_that_is_not_for_this_version_or_chain_is_refused(
    changes: dict[str, Any], chain_id: int, message: str
) -> None:
    with pytest.raises(BuyerError, match=re.escape(message)):
        check_plan(plan(**changes), VersionPublic.model_validate(version_json()), chain_id)
