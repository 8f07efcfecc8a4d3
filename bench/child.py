"""Measurements in a fresh process: what a benchmark's parent process runs to time one step
without the memory and caches of the steps before it."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_measurement(module: str, *args: str) -> dict[str, Any]:
    """Run ``python -m MODULE --measure ARGS...`` from the repository; the child prints its
    result as JSON on its last line. Its output is shown if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--measure", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(
            f"{module} measurement {' '.join(args[:3])} failed (exit {done.returncode})"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])
