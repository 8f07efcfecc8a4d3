"""Run Alembic migrations programmatically (used by the CLI and the tests)."""

from alembic import command
from alembic.config import Config

from backend.core.config import REPO_ROOT


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(REPO_ROOT / "migrations" / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
