"""The environment every benchmark sets before the backend reads its settings."""

import os
from pathlib import Path


def configure_environment(state_dir: Path, rpc_port: int) -> None:
    """Point the backend's settings at a private state dir and node (before they are read):
    nothing of the developer's own PROVENANT_* settings or database leaks into a run."""
    for name in [k for k in os.environ if k.startswith("PROVENANT_")]:
        del os.environ[name]
    os.environ.pop("DATABASE_URL", None)
    os.environ.update(
        PROVENANT_ENVIRONMENT="local",
        PROVENANT_STATE_DIR=str(state_dir),
        PROVENANT_DEPLOYMENTS_DIR=str(state_dir / "deployments"),
        PROVENANT_RPC_URL=f"http://127.0.0.1:{rpc_port}",
        # Benchmarks that use a database give their processes one of their own.
        PROVENANT_DATABASE_URL=f"sqlite:///{state_dir / 'unused.sqlite'}",
        PROVENANT_TX_RECEIPT_TIMEOUT_S="60",
    )
