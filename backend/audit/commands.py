"""``provenant verify``: the auditor's command.

The verifier (web3, the schema, the aggregation methods) loads only when the command runs, so
the rest of `provenant` starts as fast as before."""

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def _progress_bars(enabled: bool) -> Callable[[str, int], Callable[[int], None]]:
    def factory(what: str, total: int) -> Callable[[int], None]:
        if not enabled or total < 10_000:
            return lambda _n: None
        from tqdm import tqdm

        bar: Any = tqdm(total=total, unit=" " + what, unit_scale=True, file=sys.stderr, leave=False)

        def tick(n: int) -> None:
            bar.update(n)
            if bar.n >= total:
                bar.close()

        return tick

    return factory


@click.command()
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rpc", required=True, metavar="URL", help="A JSON-RPC endpoint of the chain.")
@click.option(
    "--exports",
    "exports_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder with FORMAT.tar archives and/or FORMAT/ unpacked exports to check too.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--max-blocks",
    default=10_000,
    show_default=True,
    type=click.IntRange(1, 10_000_000),
    help="Blocks per log read.",
)
@click.option(
    "--jobs",
    default=os.cpu_count() or 1,
    show_default="the CPUs",
    type=click.IntRange(1, 256),
    help="Processes that check the answers of a large manifest.",
)
def verify(
    manifest: Path, rpc: str, exports_dir: Path | None, as_json: bool, max_blocks: int, jobs: int
) -> None:
    """Verify a dataset version from its MANIFEST and the chain alone.

    Exits 0 only if every check holds; 1 naming the first failing fact otherwise."""
    from backend.audit.chain import ChainReader
    from backend.audit.verify import MAX_MANIFEST_BYTES, verify_manifest

    size = manifest.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise click.ClickException(
            f"{manifest} is {size:,} bytes; a manifest is at most {MAX_MANIFEST_BYTES:,}"
        )
    raw = manifest.read_bytes()
    reader = ChainReader(rpc, max_blocks=max_blocks)
    report = verify_manifest(
        raw,
        reader,
        exports_dir=exports_dir,
        progress=_progress_bars(not as_json and sys.stderr.isatty()),
        jobs=jobs,
    )
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        for line in report.lines():
            click.echo(line)
        first = report.first_failure
        if first is None:
            click.echo(f"verified: version {report.version_id}, manifest {report.manifest_hash}")
        else:
            click.echo(f"NOT VERIFIED: {first.id}: {first.failure}")
    sys.exit(0 if report.ok else 1)
