"""`provenant datasets`: browse the catalogue, check a preview, license a version from your
own key, and download it with every digest checked.

The client (backend/buyer/client.py) and what it imports load only when a command runs, so
the rest of `provenant` starts as fast as before."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

if TYPE_CHECKING:
    import httpx
    from eth_account.signers.local import LocalAccount

    from backend.audit.models import VerificationPublic
    from backend.buyer.client import BuyerClient, PreviewCheck, ProgressBar
    from backend.datasets.models import Notice, Preview, VersionPublic

DEFAULT_API = "http://127.0.0.1:8000"
DEFAULT_RPC = "http://127.0.0.1:8545"
KEY_ENV = "PROVENANT_KEY"
TITLE_WIDTH = 32
VERSION_COLUMNS = (
    "id",
    "project",
    "version",
    "title",
    "task type",
    "items",
    "scope",
    "price",
    "token",
    "status",
)
# An export format names a file and a directory under --out: nothing that could leave it.
_FORMAT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass
class Options:
    """The group's options, shared by every subcommand through click's context object."""

    api: str = DEFAULT_API
    rpc: str = DEFAULT_RPC
    key_file: Path | None = None
    json: bool = False
    transport: httpx.BaseTransport | None = None  # a test's httpx.MockTransport

    def client(self) -> BuyerClient:
        from backend.buyer.client import BuyerClient

        return BuyerClient(self.api, transport=self.transport)

    def account(self) -> LocalAccount:
        """The buyer's key, from --key-file or PROVENANT_KEY (never echoed, even when bad)."""
        from eth_account import Account

        if self.key_file is not None:
            where = str(self.key_file)
            try:
                text = self.key_file.read_text()
            except OSError as exc:
                raise click.ClickException(f"cannot read the key file: {exc}") from None
        elif os.environ.get(KEY_ENV):
            where, text = KEY_ENV, os.environ[KEY_ENV]
        else:
            raise click.UsageError(
                f"this command signs in as you: pass --key-file PATH (a file holding your hex "
                f"private key) or set {KEY_ENV}"
            )
        try:
            return Account.from_key(text.strip())
        except Exception:  # eth-account raises several types; none may show the key
            raise click.ClickException(
                f"{where} does not hold a private key (64 hex digits, 0x optional)"
            ) from None


class _Group(click.Group):
    """Reports the client's errors (an API error's detail, an unreachable API or chain, a
    digest that does not match) as one line and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from backend.buyer.client import BuyerError

        try:
            return super().invoke(ctx)
        except BuyerError as exc:
            raise click.ClickException(str(exc)) from None


def _set(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value not in (None, False):
            setattr(ctx.ensure_object(Options), name, value)

    return callback


def _shared(command: Callable[..., Any]) -> Callable[..., Any]:
    """The group's options, accepted after the subcommand's name as well."""
    for option in reversed(
        [
            click.option("--api", expose_value=False, callback=_set("api"), help="API URL."),
            click.option("--rpc", expose_value=False, callback=_set("rpc"), help="JSON-RPC URL."),
            click.option(
                "--key-file",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                expose_value=False,
                callback=_set("key_file"),
                help="A file holding your hex private key.",
            ),
            click.option(
                "--json",
                is_flag=True,
                default=None,
                expose_value=False,
                callback=_set("json"),
                help="Machine-readable output.",
            ),
        ]
    ):
        command = option(command)
    return command


@click.group(cls=_Group)
@click.option(
    "--api",
    envvar="PROVENANT_API_URL",
    default=DEFAULT_API,
    show_default=True,
    help="The Provenant API [env PROVENANT_API_URL].",
)
@click.option(
    "--rpc",
    envvar="PROVENANT_RPC_URL",
    default=DEFAULT_RPC,
    show_default=True,
    help="JSON-RPC endpoint your transactions go to [env PROVENANT_RPC_URL].",
)
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"A file holding your hex private key (else the key in {KEY_ENV}).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def datasets(ctx: click.Context, api: str, rpc: str, key_file: Path | None, as_json: bool) -> None:
    """Buy datasets: browse the catalogue, check a preview, license a version, download it."""
    options = ctx.ensure_object(Options)
    options.api, options.rpc = api, rpc
    options.key_file = key_file or options.key_file
    options.json = options.json or as_json


# --- rendering ----------------------------------------------------------------------------


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def short_address(address: str) -> str:
    return f"{address[:6]}...{address[-4:]}" if len(address) > 12 else address


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: columns as wide as their widest cell, numbers right-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    numeric = [bool(cells) and all(row[i].isdigit() for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join(
        [line(list(headers)), line(["-" * w for w in widths]), *(line(r) for r in cells)]
    )


def version_table(versions: Sequence[VersionPublic]) -> str:
    return render_table(
        VERSION_COLUMNS,
        [
            [
                v.id,
                v.project_id,
                v.version,
                _clip(v.title, TITLE_WIDTH),
                v.task_type,
                v.counts.get("items", 0),
                v.scope,
                v.price,
                short_address(v.token),
                v.status,
            ]
            for v in versions
        ],
    )


def _flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        if not value:
            return [(prefix, "none")] if prefix else []
        pairs: list[tuple[str, Any]] = []
        for key, inner in value.items():
            pairs.extend(_flatten(f"{prefix}.{key}" if prefix else str(key), inner))
        return pairs
    return [(prefix, value)]


def _section(title: str, pairs: Sequence[tuple[str, Any]]) -> list[str]:
    if not pairs:
        return [title, "  none"]
    width = max(len(k) for k, _ in pairs)
    return [title, *(f"  {k.ljust(width)}  {v}" for k, v in pairs)]


def _percent(bps: int) -> str:
    return f"{bps / 100:.2f}%"


def render_verification(v: VerificationPublic) -> str:
    """The platform's run of `provenant verify` on the version: its status and each check."""
    if v.status == "pending":
        return "\nVerification\n  pending: the worker has not verified this version yet"
    when = f"{v.checked_at:%Y-%m-%d %H:%M:%S %Z}" if v.checked_at else "-"
    lines = ["", "Verification", f"  {v.status.upper()} at {when} (rerun it: provenant verify)"]
    for c in v.checks:
        fact = f": {c.failure}" if c.failure else ""
        why = f" ({c.skipped})" if c.skipped else ""
        lines.append(f"  {c.status:<4}  {c.check} ({c.checked:,} checked){fact}{why}")
    if v.first_failure:
        lines.append(f"  first failure: {v.first_failure}")
    return "\n".join(lines)


def render_version(v: VersionPublic) -> str:
    """Terms, counts, exclusions, roots and the provenance summary of a version."""
    split = v.split
    coverage = v.provenance.get("consent_coverage")
    lines = [
        f"{v.title} — project {v.project_id}, version {v.version} (id {v.id})",
        f"  status {v.status}; published {v.published_at:%Y-%m-%d %H:%M:%S %Z}; {v.task_type}",
    ]
    if v.error:
        lines.append(f"  error: {v.error}")
    lines += _section(
        "Terms",
        [
            ("use (consent scope)", v.scope),
            ("licence", v.license_spdx or "custom terms"),
            ("terms hash", v.license_terms_hash),
            ("price", f"{v.price} (token base units)"),
            ("token", v.token),
            (
                "split",
                f"platform fee {_percent(split.get('fee_bps', 0))}, requester "
                f"{_percent(split.get('requester_bps', 0))}, contributors' pool "
                f"{_percent(split.get('pool_bps', 0))}",
            ),
        ],
    )
    lines += _section("Counts", list(v.counts.items()))
    lines += _section("Excluded", _flatten("", v.excluded))
    lines += _section(
        "Roots",
        [
            ("item root", v.item_root or "not built yet"),
            ("weight root", v.weight_root or "not built yet"),
            ("total weight", v.total_weight or "-"),
            ("manifest hash", v.manifest_hash or "not built yet"),
            ("chain version id", v.chain_version_id),
            ("marketplace", v.marketplace or "-"),
            ("chain id", v.chain_id if v.chain_id is not None else "-"),
            ("registered in", v.tx_hash or "not registered yet"),
        ],
    )
    provenance = [
        (k.replace("_", " "), v)
        for k, v in v.provenance.items()
        if k != "consent_coverage" and v is not None
    ]
    if coverage is not None:
        provenance.append(("consent coverage", f"{coverage:.2%} of the answers considered"))
    lines += _section("Provenance", provenance)
    if v.method:
        lines += _section("Labels", _flatten("", v.method))
    if v.changes:
        lines += _section(
            "Changes from version " + str(v.changes.get("supersedes")),
            [(k.replace("_", " "), val) for k, val in _flatten("", v.changes) if k != "supersedes"],
        )
    lines += _section(
        "Formats", [(f["format"], f"{f['bytes']} bytes, sha256 {f['sha256']}") for f in v.formats]
    )
    return "\n".join(lines)


def _label_text(label: dict[str, Any]) -> str:
    return _clip(json.dumps(label, separators=(",", ":"), ensure_ascii=False), 80)


def render_preview(preview: Preview, check: PreviewCheck) -> str:
    lines = [
        f"Preview of version {preview.version_id}: {len(preview.items)} items drawn with seed "
        f"{preview.seed!r}",
        f"item root {preview.item_root}",
        "",
    ]
    for position, item in enumerate(preview.items):
        problems = check.item_problems.get(position, [])
        mark = "[ok]    " if not problems else "[FAILED]"
        lines.append(
            f"{mark} item {item.index}: {_label_text(item.label)} (confidence "
            f"{item.confidence:.2f}, {item.n_answers} answers)"
        )
        lines.append(f"         content {item.content_hash}")
        if item.text:
            lines.append(f"         text {_clip(' '.join(item.text.split()), 100)!r}")
        lines.extend(f"         - {p}" for p in problems)
    verified = sum(1 for p in check.item_problems.values() if not p)
    lines += [
        "",
        f"proofs: {verified} of {len(preview.items)} items verified against the item root",
        f"indices recomputed from the seed: {check.expected_indices}",
    ]
    lines.extend(f"FAILED: {p}" for p in check.problems)
    lines.append("every check passed" if check.ok else "the preview did NOT check out")
    return "\n".join(lines)


def _preview_json(preview: Preview, check: PreviewCheck) -> dict[str, Any]:
    return {
        "preview": preview.model_dump(mode="json"),
        "checks": {
            "ok": check.ok,
            "expected_indices": check.expected_indices,
            "problems": check.problems,
            "items": [
                {
                    "index": item.index,
                    "ok": not check.item_problems.get(i),
                    "problems": check.item_problems.get(i, []),
                }
                for i, item in enumerate(preview.items)
            ],
        },
    }


def render_notice(n: Notice) -> str:
    when = f"{n.revoked_at:%Y-%m-%d %H:%M} " if n.revoked_at else ""
    return (
        f"[{n.kind}] {when}version {n.version_id} (project {n.project_id} v{n.version}): "
        f"{n.message}"
    )


# --- commands -----------------------------------------------------------------------------


@datasets.command("list")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@_shared
@click.pass_obj
def list_versions(options: Options, offset: int, limit: int) -> None:
    """Published dataset versions, newest first."""
    with options.client() as client:
        versions = client.versions(offset=offset, limit=limit)
    if options.json:
        _emit_json([v.model_dump(mode="json") for v in versions])
    elif not versions:
        click.echo("no published dataset versions")
    else:
        click.echo(version_table(versions))


@datasets.command()
@click.argument("version_id", type=int)
@_shared
@click.pass_obj
def show(options: Options, version_id: int) -> None:
    """A version's terms, counts, exclusions, roots and provenance summary."""
    with options.client() as client:
        version = client.version(version_id)
        verification = client.verification(version_id)
    if options.json:
        _emit_json(
            {
                **version.model_dump(mode="json"),
                "verification": verification.model_dump(mode="json"),
            }
        )
    else:
        click.echo(render_version(version))
        click.echo(render_verification(verification))


@datasets.command()
@click.argument("version_id", type=int)
@click.option(
    "--seed",
    help="Your seed: text, or 0x-hex bytes (default: the API uses the latest block hash).",
)
@click.option("--k", default=5, show_default=True, type=click.IntRange(1, 20), help="Items.")
@_shared
@click.pass_obj
def preview(options: Options, version_id: int, seed: str | None, k: int) -> None:
    """Sample items and check them here: each label's hash, each Merkle proof against the
    version's registered item root, and the indices the seed gives. Exits 1 if any fails."""
    from backend.buyer.client import check_preview

    with options.client() as client:
        version = client.version(version_id)
        shown = client.preview(version_id, seed=seed, k=k)
    check = check_preview(shown, version, k=k, seed=seed)
    if options.json:
        _emit_json(_preview_json(shown, check))
    else:
        click.echo(render_preview(shown, check))
    if not check.ok:
        sys.exit(1)


@datasets.command("license")
@click.argument("version_id", type=int)
@click.option("--yes", is_flag=True, help="Send without asking.")
@click.option(
    "--wait",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait for the marketplace to show the licence.",
)
@_shared
@click.pass_obj
def license_version(options: Options, version_id: int, yes: bool, wait: float) -> None:
    """Buy a licence: the API's approve + buy, signed and sent from your key."""
    from backend.buyer.client import send_plan

    def say(message: str) -> None:
        click.echo(message, err=options.json)

    account = options.account()
    with options.client() as client:
        client.sign_in(account)
        if any(held.id == version_id for held in client.licences()):
            say(f"{account.address} already holds a licence for version {version_id}")
            if options.json:
                _emit_json({"version_id": version_id, "licensed": True, "transactions": []})
            return
        version = client.version(version_id)
        plan = client.licence_plan(version_id)
        say(
            f"{version.title}, project {version.project_id} version {version.version} "
            f"(id {version.id}), for {version.scope} under "
            f"{version.license_spdx or 'custom terms'} (terms hash {version.license_terms_hash})\n"
            f"price {plan.price} base units of token {plan.token}, from {account.address} on "
            f"chain {plan.transactions[0].chain_id if plan.transactions else '?'}:"
        )
        for number, tx in enumerate(plan.transactions, 1):
            say(f"  {number}. {tx.description} (to {tx.to})")
        if not yes:
            click.confirm("Send these transactions?", abort=True, err=True)
        sent = send_plan(options.rpc, account, plan, version, log=say)
        say(f"waiting up to {wait:g} s for the marketplace to record the licence")
        client.wait_for_licence(version_id, timeout=wait)
    if options.json:
        _emit_json(
            {
                "version_id": version_id,
                "licensed": True,
                "transactions": [
                    {"description": s.description, "tx_hash": s.tx_hash} for s in sent
                ],
            }
        )
    else:
        click.echo(
            f"licensed: version {version_id}; download it with "
            f"`provenant datasets pull {version_id}`"
        )


def _bar(name: str, done: int, total: int | None) -> ProgressBar:
    from tqdm import tqdm

    return tqdm(
        desc=name,
        initial=done,
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=None,  # off when stderr is not a terminal
        leave=False,
    )


def _format_name(name: str, where: str) -> str:
    if not _FORMAT_NAME.fullmatch(name) or ".." in name:
        raise click.ClickException(f"{where} names an export format {name!r} that is not safe")
    return name


@datasets.command()
@click.argument("version_id", type=int)
@click.option(
    "--format",
    "formats",
    multiple=True,
    help="An export format to download (repeatable; default: every format in the manifest).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to download into (default: ./project-P-vN).",
)
@click.option(
    "--extract", is_flag=True, help="Untar each archive into OUT/FORMAT/ and check its files."
)
@_shared
@click.pass_obj
def pull(
    options: Options, version_id: int, formats: tuple[str, ...], out: Path | None, extract: bool
) -> None:
    """Download the manifest and the exports, resuming partial files, keeping each only when
    its SHA-256 matches (the manifest's keccak256 too: the hash the version was registered
    with)."""
    from backend.buyer import client as buyer

    account = options.account()
    progress = None if options.json else _bar
    report: dict[str, Any] = {"version_id": version_id, "exports": []}

    def say(message: str) -> None:
        if not options.json:
            click.echo(message)

    with options.client() as client:
        client.sign_in(account)
        version = client.version(version_id)
        out = out or Path(f"project-{version.project_id}-v{version.version}")
        out.mkdir(parents=True, exist_ok=True)
        report["directory"] = str(out)

        manifest_path = out / "manifest.json"
        registered = version.manifest_hash.lower() if version.manifest_hash else None
        if (
            registered
            and manifest_path.is_file()
            and (buyer.file_digests(manifest_path)[1] == registered)
        ):
            say(f"{manifest_path}: already here, keccak256 matches the registered hash")
        else:
            got = client.download(
                f"/versions/{version_id}/manifest",
                manifest_path,
                keccak256=registered,
                progress=progress,
            )
            say(
                f"{manifest_path}: {got.bytes} bytes, sha256 {got.sha256} verified"
                + (", keccak256 matches the registered hash" if registered else "")
            )
        report["manifest"] = {"path": str(manifest_path), "keccak256": registered}
        try:
            document = json.loads(manifest_path.read_bytes())
            exports = {e["format"]: e for e in document["exports"]}
            manifest_version_id = str(document["versionId"])
            item_root = str(document["trees"]["item"]["root"])
        except (ValueError, KeyError, TypeError) as exc:
            raise click.ClickException(
                f"{manifest_path} is not a dataset manifest: {exc}"
            ) from None
        if manifest_version_id != version.chain_version_id:
            raise click.ClickException(
                f"{manifest_path} is for chain version {manifest_version_id}, not "
                f"{version.chain_version_id}"
            )
        if version.item_root is not None and item_root.lower() != version.item_root.lower():
            raise click.ClickException(
                f"{manifest_path} has the item root {item_root}, not the version's "
                f"{version.item_root}"
            )

        wanted = list(dict.fromkeys(formats)) or sorted(exports)
        missing = [f for f in wanted if f not in exports]
        if missing:
            raise click.ClickException(
                f"the manifest lists no {', '.join(map(repr, missing))} export; it lists: "
                f"{', '.join(sorted(exports)) or 'none'}"
            )
        for fmt in wanted:
            _format_name(fmt, "the manifest")
            export = exports[fmt]
            archive = export["archive"]
            dest = out / f"{fmt}.tar"
            entry: dict[str, Any] = {"format": fmt, "path": str(dest), "sha256": archive["sha256"]}
            if dest.is_file() and buyer.file_digests(dest)[0] == archive["sha256"]:
                say(f"{dest}: already here, sha256 matches the manifest")
            else:
                got = client.download(
                    f"/versions/{version_id}/exports/{quote(fmt, safe='')}",
                    dest,
                    sha256=archive["sha256"],
                    size=archive["bytes"],
                    progress=progress,
                )
                resumed = f", resumed from byte {got.resumed_from}" if got.resumed_from else ""
                say(f"{dest}: {got.bytes} bytes, sha256 matches the manifest{resumed}")
                entry["resumed_from"] = got.resumed_from
            if extract:
                target = out / fmt
                count = buyer.extract(dest, target, checksums_sha256=export["checksums"]["sha256"])
                say(
                    f"{target}/: extracted; {count} files checked against its SHA256SUMS, "
                    "and it against the manifest"
                )
                entry["extracted_to"] = str(target)
            report["exports"].append(entry)
    if options.json:
        _emit_json(report)


@datasets.command()
@_shared
@click.pass_obj
def licences(options: Options) -> None:
    """The versions you hold a licence for."""
    account = options.account()
    with options.client() as client:
        client.sign_in(account)
        held = client.licences()
    if options.json:
        _emit_json([v.model_dump(mode="json") for v in held])
    elif not held:
        click.echo(f"{account.address} holds no licences")
    else:
        click.echo(version_table(held))


@datasets.command()
@_shared
@click.pass_obj
def notices(options: Options) -> None:
    """Notices for your licences: contributors who revoked their consent since you bought."""
    account = options.account()
    with options.client() as client:
        client.sign_in(account)
        found = client.notices()
    if options.json:
        _emit_json([n.model_dump(mode="json") for n in found])
    elif not found:
        click.echo("no notices")
    else:
        click.echo("\n".join(render_notice(n) for n in found))
