"""The buyer's client for the dataset API: SIWE sign-in, the catalogue, previews checked
locally, licences bought from the buyer's own key, and downloads that resume with Range and
are kept only when their digest matches.

Nothing here trusts the API for what the buyer can check: a preview's proofs and indices are
recomputed with the same functions the server uses (backend.provenance.merkle,
backend.datasets.service.sample_indices); a download lives in ``NAME.part`` until its SHA-256
equals the one the manifest lists (and the manifest's keccak256 the registered manifest hash);
an archive is untarred only if no member could land outside its directory.
"""

import hashlib
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar

import httpx
import pydantic
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from backend.audit.models import VerificationPublic
from backend.core.errors import AppError
from backend.datasets import labels, manifest
from backend.datasets.exports.checksums import ExportCheckError, check_unpacked
from backend.datasets.models import LicencePlan, Notice, Preview, UnsignedTx, VersionPublic
from backend.datasets.service import sample_indices, seed_bytes
from backend.provenance.merkle import keccak256_stream, leaf_hash, verify

M = TypeVar("M", bound=pydantic.BaseModel)

CHUNK = 1 << 20
PART_SUFFIX = ".part"
DEFAULT_TIMEOUT_S = 30.0
# The marketplace's mirror follows the chain every few seconds.
LICENCE_WAIT_S = 60.0
ALREADY_LICENSED = "DatasetMarketplaceAlreadyLicensed"


class BuyerError(Exception):
    """What a `provenant datasets` command reports in one line before exiting 1."""


class ApiError(BuyerError):
    """The API answered with an error: its ``detail``, as the API words it."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"{detail} (HTTP {status_code})")
        self.status_code = status_code
        self.detail = detail


class ApiUnreachable(BuyerError):
    """No answer from the API: connection refused, DNS, a timeout, a dropped download."""


class DigestMismatch(BuyerError):
    """A downloaded file is not the one expected; its ``.part`` file is already deleted."""

    def __init__(
        self, name: str, *, algorithm: str, actual: str, expected: str, source: str, removed: Path
    ) -> None:
        super().__init__(
            f"{name}: {algorithm} is {actual}, but {source} {expected}; deleted {removed}"
        )
        self.name = name
        self.actual = actual
        self.expected = expected


class UnsafeArchive(BuyerError):
    """An archive member that would be written outside the extraction directory."""


class ChainError(BuyerError):
    """The chain refused or could not be reached while sending the buyer's transactions."""


class ProgressBar(Protocol):
    """What a download reports to (tqdm's bars are such)."""

    def update(self, n: int) -> object: ...

    def close(self) -> None: ...


# (file name, bytes already there, total bytes or None) -> a bar.
ProgressFactory = Callable[[str, int, int | None], ProgressBar]


@dataclass(frozen=True)
class Downloaded:
    path: Path
    sha256: str
    bytes: int
    resumed_from: int  # bytes already in the .part file when the request went out


def _detail(reply: httpx.Response) -> str:
    """The API's ``detail`` (its error body is ``{"type", "detail"}``), else the body's text."""
    try:
        body = reply.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        return detail if isinstance(detail, str) else str(detail)
    text = reply.text.strip()
    return text[:500] if text else reply.reason_phrase or "no detail"


def _range_start(header: str | None) -> int | None:
    """START of a ``Content-Range: bytes START-END/TOTAL`` header."""
    if header is None or not header.startswith("bytes "):
        return None
    first = header[len("bytes ") :].split("-", 1)[0]
    return int(first) if first.isdigit() else None


class _Partial:
    """A ``.part`` file and the digests of the bytes in it so far."""

    def __init__(self, path: Path, *, with_keccak: bool) -> None:
        self.path = path
        self._with_keccak = with_keccak
        self._restart_digests()

    def _restart_digests(self) -> None:
        self.bytes = 0
        self.sha256 = hashlib.sha256()
        self.keccak = keccak256_stream() if self._with_keccak else None

    def reset(self) -> None:
        """Delete the file: what it holds is not a prefix of the file wanted."""
        self.path.unlink(missing_ok=True)
        self._restart_digests()

    def add(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        if self.keccak is not None:
            self.keccak.update(chunk)
        self.bytes += len(chunk)

    def load(self) -> None:
        """Digest what an earlier, interrupted download left."""
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                self.add(chunk)


def file_digests(path: Path) -> tuple[str, str]:
    """``(sha256 hex, 0x keccak256)`` of a file, read in chunks."""
    sha, kec = hashlib.sha256(), keccak256_stream()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            kec.update(chunk)
    return sha.hexdigest(), "0x" + kec.digest().hex()


class BuyerClient:
    """The dataset API as the buyer uses it, over one httpx connection pool.

    Every failure is a BuyerError: ApiError with the API's detail for an HTTP error,
    ApiUnreachable when the API does not answer."""

    def __init__(
        self,
        api_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(base_url=self.api_url, timeout=timeout, transport=transport)
        self.address: str | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "BuyerClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------

    def _unreachable(self, exc: httpx.TransportError) -> ApiUnreachable:
        if isinstance(exc, httpx.TimeoutException):
            return ApiUnreachable(f"the API at {self.api_url} did not answer in {self.timeout:g} s")
        return ApiUnreachable(f"the API is unreachable at {self.api_url} ({exc})")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            reply = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if reply.is_error:
            raise ApiError(reply.status_code, _detail(reply))
        try:
            return reply.json()
        except ValueError:
            raise BuyerError(f"{method} {path}: the API's answer is not JSON") from None

    def _get(self, model: type[M], path: str, **params: Any) -> M:
        return self._parse(model, self._call("GET", path, params=params), path)

    def _get_list(self, model: type[M], path: str, **params: Any) -> list[M]:
        rows = self._call("GET", path, params=params)
        if not isinstance(rows, list):
            raise BuyerError(f"GET {path}: the API's answer is not a list")
        return [self._parse(model, row, path) for row in rows]

    @staticmethod
    def _parse(model: type[M], data: Any, path: str) -> M:
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            raise BuyerError(
                f"GET {path}: the API's answer is not a {model.__name__}: {exc}"
            ) from None

    # --- routes ---------------------------------------------------------------------------

    def sign_in(self, account: LocalAccount) -> str:
        """Sign in with Ethereum (EIP-4361) as ``account``; later calls carry its token."""
        message = self._call("GET", "/auth/nonce", params={"address": account.address})["message"]
        if not isinstance(message, str) or account.address.lower() not in message.lower():
            raise BuyerError(
                f"the API's sign-in message does not name {account.address}; not signing it"
            )
        signature = account.sign_message(encode_defunct(text=message)).signature
        session = self._call(
            "POST",
            "/auth/verify",
            json={"message": message, "signature": "0x" + bytes(signature).hex()},
        )
        self._http.headers["Authorization"] = f"Bearer {session['token']}"
        self.address = account.address
        return account.address

    def versions(self, *, offset: int = 0, limit: int = 50) -> list[VersionPublic]:
        """The catalogue: published versions, newest first."""
        return self._get_list(VersionPublic, "/versions", offset=offset, limit=limit)

    def version(self, version_id: int) -> VersionPublic:
        return self._get(VersionPublic, f"/versions/{version_id}")

    def verification(self, version_id: int) -> VerificationPublic:
        return self._get(VerificationPublic, f"/versions/{version_id}/verification")

    def preview(self, version_id: int, *, seed: str | None = None, k: int = 5) -> Preview:
        params: dict[str, Any] = {"k": k} if seed is None else {"k": k, "seed": seed}
        return self._get(Preview, f"/versions/{version_id}/preview", **params)

    def licence_plan(self, version_id: int) -> LicencePlan:
        return self._get(LicencePlan, f"/versions/{version_id}/licence-plan")

    def licences(self) -> list[VersionPublic]:
        return self._get_list(VersionPublic, "/me/licences")

    def notices(self) -> list[Notice]:
        return self._get_list(Notice, "/me/notices")

    def wait_for_licence(
        self,
        version_id: int,
        *,
        timeout: float = LICENCE_WAIT_S,
        interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> VersionPublic:
        """Poll GET /me/licences until it lists the version (the mirror lags the chain)."""
        deadline = time.monotonic() + timeout
        while True:
            for held in self.licences():
                if held.id == version_id:
                    return held
            if time.monotonic() >= deadline:
                raise BuyerError(
                    f"the marketplace has not shown the licence for version {version_id} after "
                    f"{timeout:g} s, though the chain confirmed it; is the API's worker running? "
                    "`provenant datasets licences` shows it once the mirror catches up"
                )
            sleep(interval)

    # --- downloads ------------------------------------------------------------------------

    def download(
        self,
        path: str,
        dest: Path,
        *,
        sha256: str | None = None,
        size: int | None = None,
        keccak256: str | None = None,
        progress: ProgressFactory | None = None,
    ) -> Downloaded:
        """GET ``path`` into ``dest``, resuming ``dest.part`` with a Range request.

        ``sha256`` is what the bytes must hash to (the manifest's digest); without it, the
        API's X-Content-SHA256. ``size``, when known, lets a complete ``.part`` be checked
        without a request. ``keccak256`` (0x-hex) is checked too when given. ``dest`` appears
        only when every digest matches; on a mismatch the ``.part`` is deleted
        (DigestMismatch). A dropped connection keeps the ``.part`` for the next attempt."""
        if size is not None and sha256 is None:
            raise ValueError("a known size needs a known sha256: a complete .part is not fetched")
        partial = _Partial(dest.with_name(dest.name + PART_SUFFIX), with_keccak=bool(keccak256))
        partial.load()
        if size is not None and partial.bytes > size:
            partial.reset()
        resumed_from = partial.bytes
        source = "the manifest lists"
        if size is None or partial.bytes < size:
            try:
                served = self._fetch(path, dest.name, partial, expected=sha256, progress=progress)
            except ApiError as exc:
                # 416: the .part is as long as the file or longer, so it is not a prefix of it.
                if exc.status_code != 416 or resumed_from == 0:
                    raise
                partial.reset()
                resumed_from = 0
                served = self._fetch(path, dest.name, partial, expected=sha256, progress=progress)
            if sha256 is None:
                sha256, source = served, "the API's X-Content-SHA256 is"
        assert sha256 is not None  # given, or the API's (checked above)
        actual = partial.sha256.hexdigest()
        if actual != sha256.lower():
            partial.reset()
            raise DigestMismatch(
                dest.name,
                algorithm="SHA-256",
                actual=actual,
                expected=sha256,
                source=source,
                removed=partial.path,
            )
        if keccak256 is not None and partial.keccak is not None:
            actual_keccak = "0x" + partial.keccak.digest().hex()
            if actual_keccak != keccak256.lower():
                partial.reset()
                raise DigestMismatch(
                    dest.name,
                    algorithm="keccak256",
                    actual=actual_keccak,
                    expected=keccak256,
                    source="the version was registered with",
                    removed=partial.path,
                )
        partial.path.replace(dest)
        return Downloaded(dest, actual, partial.bytes, resumed_from)

    def _fetch(
        self,
        path: str,
        name: str,
        partial: _Partial,
        *,
        expected: str | None,
        progress: ProgressFactory | None,
    ) -> str:
        """Append the rest of the file to ``partial``; returns the API's X-Content-SHA256."""
        headers = {"Range": f"bytes={partial.bytes}-"} if partial.bytes else {}
        bar: ProgressBar | None = None
        try:
            with self._http.stream("GET", path, headers=headers) as reply:
                if reply.is_error:
                    reply.read()
                    raise ApiError(reply.status_code, _detail(reply))
                served = (reply.headers.get("x-content-sha256") or "").lower()
                if not served:
                    raise BuyerError(f"GET {path}: the API sent no X-Content-SHA256 header")
                if expected is not None and served != expected.lower():
                    partial.reset()
                    raise DigestMismatch(
                        name,
                        algorithm="the SHA-256 the API serves",
                        actual=served,
                        expected=expected,
                        source="the manifest lists",
                        removed=partial.path,
                    )
                if reply.status_code == 206:
                    start = _range_start(reply.headers.get("content-range"))
                    if start != partial.bytes:
                        raise BuyerError(
                            f"GET {path}: asked for the bytes from {partial.bytes}, the API "
                            f"answered {reply.headers.get('content-range')!r}"
                        )
                elif partial.bytes:
                    partial.reset()  # a 200 is the whole file: the range was not honoured
                length = reply.headers.get("content-length")
                total = partial.bytes + int(length) if length and length.isdigit() else None
                if progress is not None:
                    bar = progress(name, partial.bytes, total)
                with partial.path.open("ab") as out:
                    for chunk in reply.iter_bytes():
                        out.write(chunk)
                        partial.add(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
                return served
        except httpx.TransportError as exc:
            if partial.bytes:
                raise ApiUnreachable(
                    f"the download of {name} from {self.api_url} stopped at byte "
                    f"{partial.bytes} ({exc}); run the command again to resume from there"
                ) from None
            raise self._unreachable(exc) from None
        finally:
            if bar is not None:
                bar.close()


# --- previews ---------------------------------------------------------------------------


@dataclass
class PreviewCheck:
    """What a preview was checked against: the version's registered item root, the item
    leaves' proofs, each label's hash, and the indices the seed gives."""

    expected_indices: list[int]
    problems: list[str] = field(default_factory=list)  # about the preview as a whole
    item_problems: dict[int, list[str]] = field(default_factory=dict)  # by position in items

    @property
    def ok(self) -> bool:
        return not self.problems and not any(self.item_problems.values())


def check_preview(
    preview: Preview, version: VersionPublic, *, k: int, seed: str | None = None
) -> PreviewCheck:
    """Recompute everything a preview claims from what the buyer can check locally."""
    problems: list[str] = []
    if seed is not None and preview.seed != seed:
        problems.append(f"the preview used the seed {preview.seed!r}, not {seed!r}")
    expected: list[int] = []
    try:
        expected = sample_indices(seed_bytes(preview.seed), version.counts["items"], k)
    except (AppError, KeyError) as exc:
        problems.append(f"cannot recompute the indices from the seed: {exc}")
    else:
        if preview.indices != expected:
            problems.append(
                f"the indices {preview.indices} are not the ones the seed gives: {expected}"
            )
    if version.item_root is None or preview.item_root.lower() != version.item_root.lower():
        problems.append(
            f"the preview's item root {preview.item_root} is not the version's registered "
            f"item root {version.item_root}"
        )
    encoding = tuple(preview.leaf_encoding)
    if encoding != manifest.ITEM_LEAF_ENCODING:
        problems.append(
            f"the leaf encoding {list(encoding)} is not the item tree's "
            f"{list(manifest.ITEM_LEAF_ENCODING)}"
        )
    if [item.index for item in preview.items] != preview.indices:
        problems.append("the items are not the ones at the listed indices, in order")

    item_problems: dict[int, list[str]] = {}
    for position, item in enumerate(preview.items):
        # Two checks, both needed: the leaf (content hash, label hash) is in the tree, and the
        # label shown is the one that label hash stands for.
        found: list[str] = []
        try:
            leaf = leaf_hash(manifest.ITEM_LEAF_ENCODING, [item.content_hash, item.label_hash])
            if not verify(preview.item_root, leaf, item.proof):
                found.append("its proof does not lead to the item root")
        except ValueError as exc:
            found.append(f"its leaf or proof is malformed: {exc}")
        recomputed = labels.label_hash(item.label)
        if recomputed != item.label_hash.lower():
            found.append(
                f"the label shown hashes to {recomputed}, not to the {item.label_hash} in its leaf"
            )
        item_problems[position] = found
    return PreviewCheck(expected_indices=expected, problems=problems, item_problems=item_problems)


# --- archives ---------------------------------------------------------------------------


def _check_name(archive: str, name: str) -> None:
    path = PurePosixPath(name)
    if (
        not name
        or name.startswith(("/", "\\"))
        or path.is_absolute()
        or ".." in path.parts
        or "\\" in name
        or ":" in path.parts[0]
    ):
        raise UnsafeArchive(
            f"{archive}: refusing to extract {name!r}: an absolute path, a drive or '..' "
            "could write outside the extraction directory"
        )


def extract(archive: Path, dest: Path, *, checksums_sha256: str | None = None) -> int:
    """Untar ``archive`` into ``dest``; with ``checksums_sha256`` (the manifest's digest of
    the export's SHA256SUMS) check every file against it. Returns the number of members.

    Every member is checked before anything is written: a path that is absolute or holds
    '..' is refused, and so is whatever tarfile's "data" filter refuses (links leading out,
    devices, ...); the extraction itself runs with that filter too."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            _check_name(archive.name, member.name)
            try:
                tarfile.data_filter(member, str(dest))
            except tarfile.FilterError as exc:
                raise UnsafeArchive(
                    f"{archive.name}: refusing to extract {member.name!r}: {exc}"
                ) from None
        tar.extractall(dest, members=members, filter="data")
    if checksums_sha256 is not None:
        try:
            check_unpacked(dest, checksums_sha256)
        except ExportCheckError as exc:
            raise BuyerError(
                f"{archive.name}: the extracted files differ from the manifest: {exc}"
            ) from None
    return len(members)


# --- the buyer's transactions -----------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    description: str
    tx_hash: str


def check_plan(plan: LicencePlan, version: VersionPublic, chain_id: int) -> None:
    """Refuse a plan that is not for this version's price and token, or for another chain."""
    if plan.price != version.price or plan.token.lower() != version.token.lower():
        raise BuyerError(
            f"the licence plan asks {plan.price} of {plan.token}, but version {version.id} "
            f"costs {version.price} of {version.token}"
        )
    if plan.chain_version_id != version.chain_version_id:
        raise BuyerError(
            f"the licence plan buys chain version {plan.chain_version_id}, not "
            f"{version.chain_version_id}"
        )
    for tx in plan.transactions:
        if tx.chain_id != chain_id:
            raise BuyerError(
                f"the licence plan is for chain {tx.chain_id}, but the RPC endpoint is chain "
                f"{chain_id}: pass --rpc for chain {tx.chain_id}"
            )
        if int(tx.value) != 0:
            raise BuyerError(f"{tx.description!r} would send {tx.value} wei with it; refused")
    if plan.transactions and version.marketplace is not None:
        buy = plan.transactions[-1]
        if buy.to.lower() != version.marketplace.lower():
            raise BuyerError(
                f"the licence plan's last transaction goes to {buy.to}, not the marketplace "
                f"{version.marketplace}"
            )


def _revert_name(exc: Exception) -> tuple[str | None, str]:
    """A revert's custom error name (when the compiled contracts know its selector), and how
    to describe the revert."""
    from eth_abi import decode as abi_decode

    from backend.chain.artifacts import custom_errors
    from backend.core.config import get_settings

    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, bytes):
        data = "0x" + data.hex()
    if not isinstance(data, str) or not data.startswith("0x") or len(data) < 10:
        return None, str(exc)
    raw = bytes.fromhex(data[2:])
    try:
        spec = custom_errors(Path(get_settings().artifacts_dir)).get(raw[:4])
    except Exception:  # no artifacts here: the raw revert data is all there is to show
        spec = None
    if spec is None:
        return None, f"reverted with data {data[:74]}"
    values = abi_decode(list(spec.arg_types), raw[4:])
    args = ", ".join(f"{n}={v}" for n, v in zip(spec.arg_names, values, strict=True))
    return spec.name, f"{spec.name}({args})"


def _licensed_on_chain(w3: Any, version: VersionPublic, buyer: str) -> bool:
    """Whether the marketplace contract already records the buyer's licence (False when the
    compiled contracts are not at hand to ask it; the contract refuses a second sale anyway)."""
    from web3 import Web3

    from backend.chain.artifacts import load_artifact
    from backend.core.config import get_settings

    if version.marketplace is None:
        return False
    try:
        abi = load_artifact(Path(get_settings().artifacts_dir), "DatasetMarketplace").abi
    except (AppError, ValueError):
        return False
    market = w3.eth.contract(address=Web3.to_checksum_address(version.marketplace), abi=abi)
    return bool(market.functions.hasLicense(buyer, int(version.chain_version_id)).call())


def send_plan(
    rpc_url: str,
    account: LocalAccount,
    plan: LicencePlan,
    version: VersionPublic,
    *,
    log: Callable[[str], None],
    receipt_timeout: float = 120.0,
) -> list[Sent]:
    """Send the plan's transactions in order from ``account``, waiting for each receipt.

    The chain is asked first whether the licence is already there (an earlier run may have
    bought it before the API's mirror saw it), and a gas estimate that reverts with
    ``AlreadyLicensed`` ends the plan the same way: nothing is bought twice."""
    from requests.exceptions import RequestException
    from web3 import Web3
    from web3.exceptions import (
        ContractLogicError,
        ProviderConnectionError,
        TimeExhausted,
        Web3Exception,
    )

    from backend.chain.client import wallet_transaction

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": DEFAULT_TIMEOUT_S}))
    sent: list[Sent] = []
    tx: UnsignedTx | None = None
    try:
        check_plan(plan, version, w3.eth.chain_id)
        if _licensed_on_chain(w3, version, account.address):
            log(f"the chain already records {account.address}'s licence: nothing to send")
            return sent
        for tx in plan.transactions:
            try:
                params = wallet_transaction(w3, account.address, tx.to, tx.data, int(tx.value))
            except ContractLogicError as exc:
                name, described = _revert_name(exc)
                if name == ALREADY_LICENSED:
                    log(f"{tx.description}: the chain already records this licence")
                    return sent
                raise ChainError(
                    f"{tx.description}: the transaction would revert: {described}"
                ) from None
            signed = account.sign_transaction(params)
            raw_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
            tx_hash = raw_hash.to_0x_hex()
            log(f"{tx.description}: sent {tx_hash}")
            receipt = w3.eth.wait_for_transaction_receipt(raw_hash, timeout=receipt_timeout)
            if receipt["status"] != 1:
                raise ChainError(f"{tx.description}: transaction {tx_hash} reverted")
            sent.append(Sent(tx.description, tx_hash))
    except (RequestException, ConnectionError, ProviderConnectionError) as exc:
        raise ChainError(f"the chain is unreachable at {rpc_url} ({exc})") from None
    except TimeExhausted:
        what = tx.description if tx is not None else "a transaction"
        raise ChainError(f"{what}: no receipt after {receipt_timeout:g} s") from None
    except Web3Exception as exc:
        what = f"{tx.description}: " if tx is not None else ""
        raise ChainError(f"{what}{exc}") from None
    return sent
