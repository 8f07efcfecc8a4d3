"""One settings object for the whole service, read from PROVENANT_* environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]

# Chain ids on which the well-known development keys may be used.
LOCAL_CHAIN_IDS = frozenset({31337, 1337})

# Placeholder secret that only local mode accepts.
DEV_SESSION_SECRET = "provenant-local-development-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROVENANT_", env_file=".env", extra="ignore")

    environment: Literal["local", "production"] = "local"
    state_dir: Path = REPO_ROOT / ".provenant"

    # Database: SQLite under state_dir unless DATABASE_URL (or PROVENANT_DATABASE_URL) is set.
    database_url: str | None = None

    # Chain
    rpc_url: str = "http://127.0.0.1:8545"
    # The JSON-RPC endpoint browsers are told to read the chain from (GET /network); rpc_url
    # when unset. A node behind a proxy, or a public RPC, in production.
    public_rpc_url: str | None = None
    # The built web app the API serves at / (make build writes it; frontend/vite.config.mts).
    web_dist_dir: Path = REPO_ROOT / "frontend" / "dist"
    operator_key: SecretStr | None = None
    artifacts_dir: Path = REPO_ROOT / "artifacts"
    deployments_dir: Path = REPO_ROOT / "deployments"
    tx_receipt_timeout_s: float = 30.0
    rpc_timeout_s: float = 10.0

    # Celery: embedded SQLAlchemy/SQLite broker unless a URL is given.
    broker_url: str | None = None
    result_backend: str | None = None
    relay_sweep_interval_s: float = 15.0
    # A pending relay untouched this long has no live retry chain and is re-enqueued.
    relay_stale_after_s: float = 90.0

    # Sign-In with Ethereum
    siwe_domain: str = "localhost:8000"
    siwe_uri: str = "http://localhost:8000"
    siwe_nonce_ttl_s: int = 300
    siwe_max_message_age_s: int = 600
    session_ttl_s: int = 24 * 3600
    session_secret: SecretStr = SecretStr(DEV_SESSION_SECRET)

    # Consent signatures are valid for this long after the typed data is issued.
    consent_signature_ttl_s: int = 3600

    # Files: content-addressed blobs on local disk.
    storage_dir: Path | None = None
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_text_upload_bytes: int = 50 * 1024 * 1024

    # Anchoring: a batch is cut when this many leaves wait, or the oldest waited this long.
    # At most 10,000: a batch's leaves are placed with one statement of 2 values per leaf,
    # within SQLite's and PostgreSQL's limits on bound parameters (32,766 and 65,535).
    anchor_batch_size: int = Field(default=1000, ge=1, le=10_000)
    anchor_window_s: float = 5.0
    anchor_interval_s: float = 1.0

    # Quality control runs over projects with new answers this often.
    aggregate_interval_s: float = 2.0
    # ...but a project's run, which re-reads all of its answers, takes at most this share of
    # a worker's time: after a run of d seconds the next waits d × (1 / share - 1).
    aggregate_max_share: float = Field(default=0.1, gt=0, le=1)
    # Added to the worker's niceness: its batch work yields the CPU to the API's requests.
    worker_niceness: int = Field(default=10, ge=0, le=19)
    # Escrow events are mirrored, and reward epochs built and posted, this often.
    reward_interval_s: float = 5.0
    # On PostgreSQL, the worker checks this often whether the tables leases rewrite need a
    # vacuum (backend/core/maintenance.py); 0 leaves it to the server's autovacuum.
    vacuum_interval_s: float = Field(default=5.0, ge=0)

    # Dataset marketplace: the platform's fee on every licence sold, in basis points, and how
    # often its events (registrations, sales, royalty claims) are mirrored.
    marketplace_fee_bps: int = Field(default=500, ge=0, le=10_000)
    marketplace_interval_s: float = 5.0
    # How often the worker looks for published versions to verify (backend/audit/service.py).
    verify_interval_s: float = Field(default=60.0, gt=0)

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Requests one API process serves at once (its thread pool, and its database pool). More
    # threads than this only queue on the same cores, and each costs a database connection.
    api_threads: int = Field(default=16, ge=1, le=200)
    # Requests a client's keep-alive connection serves before the API closes it, so that
    # connections spread again across API processes (backend/core/asgi.py, RecycleConnections);
    # 0 keeps connections open for as long as clients do.
    api_keepalive_requests: int = Field(default=100, ge=0)
    # On PostgreSQL, the contributor's loop (tasks/next, answer, answer-and-next) runs its
    # common cases on the event loop with asyncpg (backend/tasks/pg_loop.py); false sends
    # every request through the sync service.
    pg_async_loop: bool = True
    # Connections each API process holds for it: requests beyond them wait in the process,
    # where waiting costs nothing, rather than as PostgreSQL backends contending for the cores.
    pg_loop_connections: int = Field(default=8, ge=1, le=200)
    # On PostgreSQL, the loop's requests are served before FastAPI's routing, middleware and
    # dependencies, which cost about as much CPU as the loop's own work
    # (backend/tasks/fast_lane.py); false serves them through FastAPI.
    api_loop_fast_lane: bool = True

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> "Settings":
        if self.environment != "local":
            if self.session_secret.get_secret_value() == DEV_SESSION_SECRET:
                raise ValueError("PROVENANT_SESSION_SECRET must be set outside local mode")
            if self.operator_key is None:
                raise ValueError("PROVENANT_OPERATOR_KEY must be set outside local mode")
        return self

    @property
    def resolved_database_url(self) -> str:
        import os

        url = self.database_url or os.environ.get("DATABASE_URL")
        if url:
            # Plain postgresql:// URLs mean psycopg 3, the driver we ship.
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{self.state_dir / 'provenant.sqlite'}"

    @property
    def resolved_storage_dir(self) -> Path:
        return self.storage_dir or self.state_dir / "blobs"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.state_dir / 'broker.sqlite'}"

    @property
    def resolved_result_backend(self) -> str:
        return self.result_backend or f"db+sqlite:///{self.state_dir / 'results.sqlite'}"


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return settings
