"""Deploy the contracts to the node PROVENANT_RPC_URL names; safe to re-run.

A contract already in the deployments file with code at its address is left alone, so a
second run against the same chain deploys nothing; a restarted local node (empty chain)
gets fresh deployments.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_typing import HexStr
from web3 import Web3

from backend.chain.client import ChainClient
from backend.core.config import LOCAL_CHAIN_IDS

TEST_TOKEN_NAME = "Provenant Test Reward"
TEST_TOKEN_SYMBOL = "PRVT"
TEST_TOKEN_DECIMALS = 18
# Minimum share of each dataset sale that goes to the contributors' royalty pool.
MARKETPLACE_ROYALTY_FLOOR_BPS = 2000


@dataclass(frozen=True)
class DeployStep:
    name: str
    args: Callable[[ChainClient], tuple[Any, ...]]
    local_only: bool = False


STEPS: tuple[DeployStep, ...] = (
    DeployStep(
        "TestRewardToken",
        lambda c: (TEST_TOKEN_NAME, TEST_TOKEN_SYMBOL, TEST_TOKEN_DECIMALS, c.operator.address),
        local_only=True,
    ),
    DeployStep("ConsentRegistry", lambda c: (c.operator.address, c.operator.address)),
    DeployStep("ProvenanceRegistry", lambda c: (c.operator.address, c.operator.address)),
    DeployStep("ProjectEscrow", lambda c: (c.operator.address, c.operator.address)),
    # After ProjectEscrow, whose address deploy_all has just recorded (or found) in
    # c.deployments, the same object it records into: the marketplace reads projects'
    # requesters from that escrow. The operator is admin, operator and treasury.
    DeployStep(
        "DatasetMarketplace",
        lambda c: (
            c.operator.address,
            c.operator.address,
            c.deployments.address_of("ProjectEscrow"),
            c.operator.address,
            MARKETPLACE_ROYALTY_FLOOR_BPS,
        ),
    ),
)


def deploy_all(client: ChainClient, log: Callable[[str], None] = print) -> dict[str, str]:
    """Deploy what is missing; return every contract's address."""
    deployments = client.deployments
    addresses: dict[str, str] = {}
    for step in STEPS:
        if step.local_only and client.chain_id not in LOCAL_CHAIN_IDS:
            continue
        existing = deployments.contracts.get(step.name)
        if existing and client.code_at(existing["address"]):
            addresses[step.name] = existing["address"]
            log(f"{step.name}: already deployed at {existing['address']}")
            continue
        result = client.deploy(step.name, *step.args(client))
        receipt = client.w3.eth.get_transaction_receipt(HexStr(result.tx_hash))
        address = Web3.to_checksum_address(str(receipt["contractAddress"]))
        deployments.record(
            step.name, address=address, tx_hash=result.tx_hash, block_number=result.block_number
        )
        addresses[step.name] = address
        log(f"{step.name}: deployed at {address} (tx {result.tx_hash})")
    return addresses
