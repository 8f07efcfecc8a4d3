"""Web app benchmark: the JavaScript each role's page loads, gzipped.

    .venv/bin/python -m bench.web

Builds the app into a temporary folder (Vite, as `make build` does) and reads Vite's build
manifest: a page loads the entry chunk, the chunk of its role (App.tsx imports each role
lazily) and every chunk those import statically, transitively; chunks imported dynamically
(the verifier on the auditor's page, for instance) load only when used and are listed apart.
Each file is gzipped at level 9, as a server would send it. Prints a table; not a test.
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.datasets import machine, revision

REPO = Path(__file__).resolve().parents[1]
ROLES = {
    "contributor": "src/pages/contributor/Contributor.tsx",
    "requester": "src/pages/requester/Requester.tsx",
    "buyer": "src/pages/buyer/Buyer.tsx",
    "auditor": "src/pages/auditor/Auditor.tsx",
}
ENTRY = "index.html"
TARGET_KB = {"contributor": 200.0}


def build(out: Path) -> dict[str, dict]:
    subprocess.run(
        ["npx", "vite", "build", "--config", "frontend/vite.config.mts", "--logLevel", "warn"],
        cwd=REPO,
        check=True,
        env={**os.environ, "PROVENANT_WEB_DIST_DIR": str(out)},
    )
    return json.loads((out / ".vite" / "manifest.json").read_text())


def static_closure(manifest: dict[str, dict], keys: list[str]) -> list[str]:
    """The chunks ``keys`` load before they run: themselves and their static imports."""
    seen: list[str] = []
    stack = list(keys)
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        seen.append(key)
        stack.extend(manifest[key].get("imports", []))
    return seen


def gzipped_kb(path: Path) -> float:
    return len(gzip.compress(path.read_bytes(), compresslevel=9)) / 1024


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    print(f"bench.web {revision()}: {machine()}")
    with tempfile.TemporaryDirectory(prefix="provenant-web-") as tmp:
        out = Path(tmp)
        manifest = build(out)
        rows = []
        for role, source in ROLES.items():
            chunks = static_closure(manifest, [ENTRY, source])
            js = [manifest[k]["file"] for k in chunks if manifest[k]["file"].endswith(".js")]
            kb = sum(gzipped_kb(out / f) for f in js)
            later = sorted(
                {d for k in chunks for d in manifest[k].get("dynamicImports", [])}
                - set(chunks)
                - set(ROLES.values())
            )
            later_kb = sum(
                gzipped_kb(out / manifest[k]["file"])
                for k in static_closure(manifest, later)
                if manifest[k]["file"].endswith(".js") and k not in chunks
            )
            target = TARGET_KB.get(role)
            verdict = "" if target is None else ("met" if kb < target else "MISSED")
            rows.append((role, len(js), kb, later_kb, target, verdict))
    print("\n| page | JS files | JS gzipped, KB | loaded on use, KB | target |")
    print("|---|---:|---:|---:|---|")
    for role, n, kb, later_kb, target, verdict in rows:
        goal = f"< {target:.0f} KB: {verdict}" if target else ""
        print(f"| {role} | {n} | {kb:.1f} | {later_kb:.1f} | {goal} |")


if __name__ == "__main__":
    sys.exit(main())
