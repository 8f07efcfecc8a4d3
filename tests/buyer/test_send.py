"""Sending a licence plan's transactions from the buyer's own key, on the suite's Hardhat node:
receipts awaited, a reverting transaction named by its custom error before anything is sent,
and an unreachable chain reported as such. The plan here approves and transfers the test
token, so what is tested is the sending, not the marketplace."""

from typing import Any

import pytest
from eth_account import Account
from eth_typing import HexStr
from web3 import Web3

from backend.buyer.client import BuyerError, ChainError, send_plan
from backend.chain.artifacts import load_artifact
from backend.chain.client import ChainClient
from backend.chain.keys import dev_keys
from backend.core.config import get_settings
from backend.datasets.models import LicencePlan, UnsignedTx, VersionPublic
from tests.buyer.test_client import version_json

BUYER = Account.from_key(dev_keys()[7])
SPENDER = Account.from_key(dev_keys()[8]).address


@pytest.fixture
def token(chain: ChainClient) -> Any:
    abi = load_artifact(get_settings().artifacts_dir, "TestRewardToken").abi
    address = Web3.to_checksum_address(chain.deployments.address_of("TestRewardToken"))
    return chain.w3.eth.contract(address=address, abi=abi)


def plan_and_version(
    chain: ChainClient, token: Any, *calls: tuple[str, list[Any]]
) -> tuple[LicencePlan, VersionPublic]:
    version = VersionPublic.model_validate(
        version_json(token=token.address, price="5", marketplace=None)
    )
    plan = LicencePlan(
        chain_version_id=version.chain_version_id,
        price="5",
        token=token.address,
        transactions=[
            UnsignedTx(
                description=name,
                chain_id=chain.chain_id,
                to=token.address,
                data=token.encode_abi(name, args=args),
            )
            for name, args in calls
        ],
    )
    return plan, version


def test_the_plans_transactions_are_sent_in_order_and_confirmed(
    chain: ChainClient, token: Any
) -> None:
    plan, version = plan_and_version(
        chain, token, ("approve", [SPENDER, 1]), ("approve", [SPENDER, 5])
    )
    said: list[str] = []

    sent = send_plan(get_settings().rpc_url, BUYER, plan, version, log=said.append)

    assert [s.description for s in sent] == ["approve", "approve"]
    for s in sent:
        assert chain.w3.eth.get_transaction_receipt(HexStr(s.tx_hash))["status"] == 1
    assert token.functions.allowance(BUYER.address, SPENDER).call() == 5
    assert said == [f"approve: sent {s.tx_hash}" for s in sent]


def test_a_transaction_that_would_revert_is_named_and_not_sent(
    chain: ChainClient, token: Any
) -> None:
    balance = token.functions.balanceOf(BUYER.address).call()
    plan, version = plan_and_version(chain, token, ("transfer", [SPENDER, balance + 1]))
    nonce = chain.w3.eth.get_transaction_count(BUYER.address)

    reverts = r"transfer: the transaction would revert: ERC20InsufficientBalance\(sender="
    with pytest.raises(ChainError, match=reverts):
        send_plan(get_settings().rpc_url, BUYER, plan, version, log=lambda _m: None)
    assert chain.w3.eth.get_transaction_count(BUYER.address) == nonce


def test_a_plan_for_another_chain_is_refused_before_sending(chain: ChainClient, token: Any) -> None:
    plan, version = plan_and_version(chain, token, ("approve", [SPENDER, 5]))
    plan.transactions[0].chain_id = 1

    with pytest.raises(BuyerError, match="pass --rpc for chain 1"):
        send_plan(get_settings().rpc_url, BUYER, plan, version, log=lambda _m: None)


def test_an_unreachable_chain_is_named(chain: ChainClient, token: Any) -> None:
    plan, version = plan_and_version(chain, token, ("approve", [SPENDER, 5]))

    with pytest.raises(ChainError, match="the chain is unreachable at http://127.0.0.1:9"):
        send_plan("http://127.0.0.1:9", BUYER, plan, version, log=lambda _m: None)
