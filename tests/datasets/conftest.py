import pytest


@pytest.fixture
def marketplace(chain, escrow) -> str:
    """A DatasetMarketplace of this test's own, over the test's own escrow (project ids start
    over with each test's database while the chain goes on)."""
    from backend.datasets.marketplace import MARKETPLACE

    operator = chain.operator.address
    result = chain.deploy(MARKETPLACE, operator, operator, escrow, operator, 2000)
    receipt = chain.w3.eth.get_transaction_receipt(result.tx_hash)
    address = str(receipt["contractAddress"])
    chain.deployments.record(
        MARKETPLACE, address=address, tx_hash=result.tx_hash, block_number=result.block_number
    )
    return address
