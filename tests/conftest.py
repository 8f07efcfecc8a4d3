"""Test environment: a Hardhat node of the suite's own on a free port, contracts deployed into
it, a migrated database (SQLite by default; PostgreSQL when PROVENANT_TEST_DATABASE_URL is
set), and the broker from PROVENANT_TEST_BROKER_URL (embedded SQLite by default).

The environment is set at import time, before any test module imports the settings.
"""

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from backend.stack import free_port

for _name in [
    k for k in os.environ if k.startswith("PROVENANT_") and not k.startswith("PROVENANT_TEST_")
]:
    del os.environ[_name]
os.environ.pop("DATABASE_URL", None)

STATE_DIR = Path(tempfile.mkdtemp(prefix="provenant-test-"))
RPC_PORT = free_port()
TEST_DATABASE_SERVER = os.environ.get("PROVENANT_TEST_DATABASE_URL")
TEST_BROKER = os.environ.get("PROVENANT_TEST_BROKER_URL")

if TEST_DATABASE_SERVER:
    # A database of this run's own on the given server, dropped at the end.
    _db_name = f"provenant_test_{uuid.uuid4().hex[:12]}"
    _admin = create_engine(TEST_DATABASE_SERVER, isolation_level="AUTOCOMMIT")
    with _admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{_db_name}"'))
    DATABASE_URL = TEST_DATABASE_SERVER.rsplit("/", 1)[0] + f"/{_db_name}"
else:
    _db_name = None
    DATABASE_URL = f"sqlite:///{STATE_DIR / 'test.sqlite'}"

os.environ.update(
    PROVENANT_ENVIRONMENT="local",
    PROVENANT_STATE_DIR=str(STATE_DIR),
    PROVENANT_DEPLOYMENTS_DIR=str(STATE_DIR / "deployments"),
    PROVENANT_RPC_URL=f"http://127.0.0.1:{RPC_PORT}",
    PROVENANT_DATABASE_URL=DATABASE_URL,
    PROVENANT_TX_RECEIPT_TIMEOUT_S="20",
    PROVENANT_RPC_TIMEOUT_S="5",
)
if TEST_BROKER:
    os.environ["PROVENANT_BROKER_URL"] = TEST_BROKER
    # RabbitMQ has no result store of its own in Celery 5; results then travel as messages.
    os.environ["PROVENANT_RESULT_BACKEND"] = (
        "rpc://" if TEST_BROKER.startswith("amqp") else TEST_BROKER
    )


def pytest_report_header() -> list[str]:
    return [
        f"provenant database: {DATABASE_URL}",
        f"provenant broker: {TEST_BROKER or 'embedded SQLite'}",
    ]


@pytest.fixture(scope="session")
def hardhat_node() -> Iterator[str]:
    """A Hardhat node of this test run's own, with the contracts deployed."""
    from backend.chain.client import ChainClient
    from backend.chain.deploy import deploy_all
    from backend.core.config import get_settings
    from backend.stack import compile_contracts, start_hardhat_node, stop_process

    compile_contracts()
    proc = start_hardhat_node(RPC_PORT, STATE_DIR / "logs" / "hardhat.log")
    try:
        deploy_all(ChainClient(get_settings()), log=lambda _m: None)
        yield os.environ["PROVENANT_RPC_URL"]
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def migrated_database() -> Iterator[str]:
    from backend.core.migrate import upgrade

    upgrade(DATABASE_URL)
    yield DATABASE_URL
    from backend.core.db import get_engine

    get_engine().dispose()
    if _db_name is not None:
        with _admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{_db_name}" WITH (FORCE)'))


@pytest.fixture
def db(migrated_database: str) -> Iterator[None]:
    """A clean database for each test: every table is emptied afterwards."""
    yield
    from sqlmodel import SQLModel

    import backend.models  # noqa: F401
    from backend.core.db import get_engine

    with get_engine().begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def session(db: None) -> Iterator:
    from sqlmodel import Session

    from backend.core.db import get_engine

    with Session(get_engine()) as s:
        yield s


@pytest.fixture
def chain(hardhat_node: str):
    from backend.deps import get_chain

    return get_chain()


@pytest.fixture
def escrow(chain, db: None) -> str:
    """A ProjectEscrow of this test's own. Project ids start over with each test's database
    while the chain goes on, so each test registers its projects in a fresh escrow (worker
    processes started afterwards read it from the deployments file)."""
    from backend.rewards.escrow import ESCROW

    result = chain.deploy(ESCROW, chain.operator.address, chain.operator.address)
    receipt = chain.w3.eth.get_transaction_receipt(result.tx_hash)
    address = str(receipt["contractAddress"])
    chain.deployments.record(
        ESCROW, address=address, tx_hash=result.tx_hash, block_number=result.block_number
    )
    return address


@pytest.fixture
def marketplace(chain, escrow) -> str:
    """A DatasetMarketplace of this test's own, over the test's own escrow (it takes projects'
    requesters from there)."""
    from backend.datasets.marketplace import MARKETPLACE

    operator = chain.operator.address
    result = chain.deploy(MARKETPLACE, operator, operator, escrow, operator, 2000)
    receipt = chain.w3.eth.get_transaction_receipt(result.tx_hash)
    address = str(receipt["contractAddress"])
    chain.deployments.record(
        MARKETPLACE, address=address, tx_hash=result.tx_hash, block_number=result.block_number
    )
    return address


@pytest.fixture
def client(db: None, hardhat_node: str) -> Iterator:
    from fastapi.testclient import TestClient

    from backend.main import create_app

    with TestClient(create_app()) as c:
        yield c


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(STATE_DIR, ignore_errors=True)
