import pytest
from web3 import Web3

from backend.chain.client import ChainClient
from backend.chain.deploy import deploy_all
from backend.core.config import get_settings
from backend.core.errors import ChainRevert, ChainUnavailable
from backend.stack import free_port


def test_reads_artifacts_and_deployments(chain):
    registry = chain.contract("ConsentRegistry")
    assert registry.functions.RELAYER_ROLE().call() == Web3.keccak(text="RELAYER_ROLE")
    assert registry.functions.hasRole(
        registry.functions.RELAYER_ROLE().call(), chain.operator.address
    ).call()


def test_custom_errors_become_domain_errors_with_named_arguments(chain):
    registry = chain.contract("ConsentRegistry")
    with pytest.raises(ChainRevert) as info:
        chain.transact(
            registry.functions.revokeConsent(
                chain.operator.address, b"\x01" * 32, 0, 2**40, b"\x00" * 65
            )
        )
    # The zero signature fails before the unknown-consent check.
    assert info.value.error_name == "ConsentRegistryInvalidSignature"
    assert info.value.error_args == {"contributor": chain.operator.address}


def test_inherited_openzeppelin_errors_are_decoded_too(chain):
    token = chain.contract("TestRewardToken")
    with pytest.raises(ChainRevert) as info:
        chain.transact(token.functions.transfer(chain.operator.address, 10**40))
    assert info.value.error_name == "ERC20InsufficientBalance"
    assert info.value.error_args["needed"] == 10**40


def test_unreachable_node_is_chain_unavailable():
    settings = get_settings().model_copy(update={"rpc_url": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(ChainUnavailable, match="unreachable"):
        _ = ChainClient(settings).chain_id


def test_nonce_resyncs_when_another_sender_used_the_key(chain):
    # A second client with the same key (another worker process) sends in between.
    other = ChainClient(chain.settings)
    token = chain.contract("TestRewardToken")
    first = chain.transact(token.functions.mint(chain.operator.address, 1))
    other.transact(token.functions.mint(chain.operator.address, 1))
    third = chain.transact(token.functions.mint(chain.operator.address, 1))
    assert third.block_number > first.block_number


def test_deploy_is_idempotent(chain):
    before = dict(chain.deployments.contracts)
    block = chain.w3.eth.block_number
    addresses = deploy_all(chain, log=lambda _m: None)
    assert chain.w3.eth.block_number == block
    assert addresses == {name: entry["address"] for name, entry in before.items()}


def test_deploy_redeploys_when_the_chain_lost_the_code(chain, tmp_path):
    settings = chain.settings.model_copy(update={"deployments_dir": tmp_path})
    fresh = ChainClient(settings)
    stale = fresh.deployments
    stale.record("ConsentRegistry", address="0x" + "42" * 20, tx_hash="0x0", block_number=0)
    stale.record(
        "TestRewardToken",
        address=chain.deployments.address_of("TestRewardToken"),
        tx_hash="0x0",
        block_number=0,
    )
    addresses = deploy_all(fresh, log=lambda _m: None)
    assert addresses["ConsentRegistry"] != "0x" + "42" * 20
    assert fresh.code_at(addresses["ConsentRegistry"])
    assert addresses["TestRewardToken"] == chain.deployments.address_of("TestRewardToken")
