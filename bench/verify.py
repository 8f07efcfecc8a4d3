"""Verifier benchmark: `provenant verify` on a large version, its manifest checks by stage and
its chain reads apart.

    .venv/bin/python -m bench.verify            # 100,000 items / ~500,000 answers
    .venv/bin/python -m bench.verify --items 10000

1. The version: bench.datasets' publishing run (a text-classification project with 2,000
   contributors, overlap 5, anchored in batches of 10,000 leaves) on a SQLite file, then its
   manifest is kept and the rest deleted.
2. The manifest's checks, in a fresh process: parsing, the RFC 8785 form, the schema, and each
   check of backend/audit/manifest_checks.py, timed by wrapping the functions they call (self
   time), with the peak RSS.
3. The chain reads, apart: the exact calls `provenant verify` makes for this manifest (chain
   id, code of the four contracts, the version, every batch root and its BatchAnchored logs,
   every consent record), against a local Hardhat node with the contracts deployed. The
   version's records are not on that chain (its consents and batches were made without one),
   so the calls answer "not registered" and "not recorded"; their number and cost are those
   of a real verification, which is what is measured.

Prints tables; not a test. bench/README.md has figures measured with it.
"""

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import patch

from bench.child import run_measurement
from bench.datasets import machine, reset_peak, revision
from bench.environment import configure_environment
from bench.rewards import print_table

TARGET_S = 10.0


class SelfTimes:
    """Self time per wrapped function: an inner wrapped call's time is not its caller's."""

    def __init__(self) -> None:
        self.spent: Counter[str] = Counter()
        self._stack: list[str] = []
        self._mark = 0.0

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            now = time.perf_counter()
            if self._stack:
                self.spent[self._stack[-1]] += now - self._mark
            self._stack.append(name)
            self._mark = now
            try:
                return fn(*args, **kwargs)
            finally:
                now = time.perf_counter()
                self.spent[self._stack.pop()] += now - self._mark
                self._mark = now

        return timed


STAGES = (
    ("parse", "parse (orjson)"),
    ("form", "RFC 8785 form (orjson's encoding where it is RFC 8785's, compared)"),
    ("schema", "schema (jsonschema-rs)"),
    ("label_hash", "items.labelHash"),
    ("item_tree", "items.tree"),
    ("verdicts", "answers: hash, leaf and proof per answer (the parent's wait)"),
    ("labels", "labels.recompute (majority vote per item)"),
    ("weights", "weights.tree"),
)


def measure_checks(manifest_path: str, jobs: str = "1") -> dict[str, Any]:
    """Time the manifest's part of verify_manifest on the file, in this fresh process."""
    import orjson

    from backend.audit import manifest_checks as mc
    from backend.audit import verify as v
    from backend.provenance import leaf

    raw = Path(manifest_path).read_bytes()
    times = SelfTimes()
    validator = mc._schema_validator()
    rss_before = reset_peak()
    with (
        patch.object(mc.orjson, "loads", times.wrap("parse", orjson.loads)),
        patch.object(
            mc, "canonical_json_of_parsed", times.wrap("form", leaf.canonical_json_of_parsed)
        ),
        patch.object(mc, "_schema_validator", lambda: _Timed(validator, times)),
        patch.object(mc.labels, "label_hash", times.wrap("label_hash", mc.labels.label_hash)),
        patch.object(mc.manifest, "item_tree", times.wrap("item_tree", mc.manifest.item_tree)),
        patch.object(mc, "_answer_verdicts", _timed_verdicts(mc._answer_verdicts, times)),
        patch.object(mc, "_check_labels", times.wrap("labels", mc._check_labels)),
        patch.object(mc, "_check_weights", times.wrap("weights", mc._check_weights)),
        # The chain's checks are measured apart (measure_chain).
        patch.object(v, "_check_chain", lambda facts, reader, report: None),
    ):
        report = v.verify_manifest(raw, _NoChain(), jobs=int(jobs))
    checks = [c for c in report.checks if not c.id.startswith("exports.")]
    assert all(c.failures == 0 for c in checks), report.lines()
    return {
        "total": report.timings["manifest_s"],
        "stages": dict(times.spent),
        "manifest_bytes": len(raw),
        "items": report_checked(checks, "items.tree"),
        "answers": report_checked(checks, "answers.leaf"),
        "batches": raw.count(b'"batchId":'),
        "contributors": report_checked(checks, "weights.tree"),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "children_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "rss_before_mb": rss_before / 1024,
    }


def report_checked(checks: list[Any], check_id: str) -> int:
    return int(next(c.checked for c in checks if c.id == check_id))


class _NoChain:
    calls = 0


def _timed_verdicts(fn: Callable[..., Any], times: SelfTimes) -> Callable[..., Any]:
    """The verdicts are a generator: time each step of it, not its creation."""

    def timed(*args: Any) -> Any:
        steps = fn(*args)
        step = times.wrap("verdicts", lambda: next(steps, None))
        while (verdicts := step()) is not None:
            yield verdicts

    return timed


class _Timed:
    def __init__(self, validator: Any, times: SelfTimes) -> None:
        self.iter_errors = times.wrap("schema", validator.iter_errors)


def measure_chain(manifest_path: str) -> dict[str, Any]:
    """The chain reads of a verification of this manifest, against the configured node."""
    from backend.audit.chain import ChainReader
    from backend.chain.client import ChainClient
    from backend.core.config import get_settings

    doc = json.loads(Path(manifest_path).read_bytes())
    chain = ChainClient(get_settings())
    contracts = {
        name: chain.deployments.address_of(name)
        for name in ("ConsentRegistry", "DatasetMarketplace", "ProjectEscrow", "ProvenanceRegistry")
    }
    consents = sorted({a["consentHash"] for b in doc["batches"] for a in b["answers"]})
    batch_ids = [int(b["batchId"]) for b in doc["batches"]]
    reader = ChainReader(get_settings().rpc_url)
    t0 = time.perf_counter()
    reader.chain_id()
    for address in contracts.values():
        reader.has_code(address)
    reader.pin_latest()
    reader.marketplace_escrow(contracts["DatasetMarketplace"])
    reader.version(contracts["DatasetMarketplace"], int(doc["versionId"]))
    t_version = time.perf_counter()
    reader.anchorings(contracts["ProvenanceRegistry"], batch_ids)
    for batch_id in batch_ids:
        reader.root_of(contracts["ProvenanceRegistry"], batch_id)
    t_batches = time.perf_counter()
    reader.consents(contracts["ConsentRegistry"], consents)
    t_end = time.perf_counter()
    return {
        "total": t_end - t0,
        "version_s": t_version - t0,
        "batches_s": t_batches - t_version,
        "consents_s": t_end - t_batches,
        "calls": reader.calls,
        "consents": len(consents),
        "batches": len(batch_ids),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--contributors", type=int, default=2_000)
    parser.add_argument("--manifest", help="check this manifest instead of publishing one")
    parser.add_argument("--no-chain", action="store_true", help="skip part 3")
    parser.add_argument("--save-manifest", help="also copy the published manifest here")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        kind, *rest = args.measure
        fn = {"checks": measure_checks, "chain": measure_chain}[kind]
        print(json.dumps(fn(*rest)))
        return

    from backend.stack import free_port

    state_dir = Path(tempfile.mkdtemp(prefix="provenant-bench-verify-"))
    rpc_port = free_port()
    configure_environment(state_dir, rpc_port)
    print(f"bench.verify {revision()}: {machine()}; {time.strftime('%Y-%m-%d')}")
    started = time.perf_counter()
    try:
        manifest = Path(args.manifest) if args.manifest else state_dir / "manifest.json"
        if not args.manifest:
            print(f"\n== 1. Publishing a version of {args.items:,} items (bench.datasets)")
            _publish(state_dir, args.items, args.contributors, manifest)
            if args.save_manifest:
                shutil.copyfile(manifest, args.save_manifest)
        print("\n== 2. The manifest's checks")
        jobs = os.cpu_count() or 1
        runs = [run_measurement("bench.verify", "checks", str(manifest), "1")]
        if jobs > 1:
            runs.append(run_measurement("bench.verify", "checks", str(manifest), str(jobs)))
        checks = runs[-1]
        rows = [
            [text, *(f"{run['stages'].get(key, 0.0):.2f}" for run in runs)] for key, text in STAGES
        ]
        rows.append(["other", *(f"{r['total'] - sum(r['stages'].values()):.2f}" for r in runs)])
        rows.append(["**the manifest's checks**", *(f"**{r['total']:.2f}**" for r in runs)])
        rows.append(
            [
                "peak RSS, MB (parent / a child)",
                *(f"{r['max_rss_mb']:,.0f} / {r['children_rss_mb']:,.0f}" for r in runs),
            ]
        )
        print_table(
            f"{checks['items']:,} items, {checks['answers']:,} answers in {checks['batches']} "
            f"batches, {checks['contributors']:,} contributors; a "
            f"{checks['manifest_bytes'] / 1e6:,.1f} MB manifest; one run each, fresh process",
            ["stage (self time), s", "--jobs 1", *([f"--jobs {jobs}"] if jobs > 1 else [])],
            rows,
        )
        met = "met" if checks["total"] < TARGET_S else "MISSED"
        took = f"{checks['total']:.1f} s"
        print(f"\nTarget: under {TARGET_S:.0f} s after the chain reads: {met} ({took})")
        if not args.no_chain:
            print("\n== 3. The chain reads (a local Hardhat node)")
            chain = _chain_reads(state_dir, rpc_port, manifest)
            print_table(
                "the reads of `provenant verify` for this manifest",
                ["reads", "s"],
                [
                    ["chain id, code, the version", f"{chain['version_s']:.2f}"],
                    [f"{chain['batches']} batches: logs and roots", f"{chain['batches_s']:.2f}"],
                    [f"{chain['consents']:,} consent records", f"{chain['consents_s']:.2f}"],
                    [f"**total, {chain['calls']:,} calls**", f"**{chain['total']:.2f}**"],
                ],
            )
        load = os.getloadavg()[0]
        print(f"\ndone in {time.perf_counter() - started:.0f} s (load average {load:.1f})")
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def _publish(state_dir: Path, items: int, contributors: int, out: Path) -> None:
    from sqlalchemy import create_engine, text

    from backend.storage.local import LocalFileStorage

    url = f"sqlite:///{state_dir / 'version.sqlite'}"
    blobs = state_dir / "blobs"
    setup = run_measurement(
        "bench.datasets", "populate", url, str(blobs), str(items), str(contributors), "1"
    )
    built = run_measurement("bench.datasets", "build", url, str(blobs), "jsonl")
    engine = create_engine(url)
    with engine.connect() as connection:
        digest = connection.execute(text("SELECT manifest_digest FROM dataset_version")).scalar()
    engine.dispose()
    with LocalFileStorage(blobs).open(str(digest)) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    shutil.rmtree(blobs, ignore_errors=True)
    Path(url.removeprefix("sqlite:///")).unlink()
    print(f"  set up in {setup['setup_s']:.0f} s, built in {built['total']:.0f} s")


def _chain_reads(state_dir: Path, rpc_port: int, manifest: Path) -> dict[str, Any]:
    from backend.chain.client import ChainClient
    from backend.chain.deploy import deploy_all
    from backend.core.config import get_settings
    from backend.stack import compile_contracts, start_hardhat_node, stop_process

    compile_contracts()
    node = start_hardhat_node(rpc_port, state_dir / "logs" / "hardhat.log")
    try:
        deploy_all(ChainClient(get_settings()), log=lambda _m: None)
        return run_measurement("bench.verify", "chain", str(manifest))
    finally:
        stop_process(node)


if __name__ == "__main__":
    sys.exit(main())
