"""GET /network: what a browser needs to reach the chain."""


def test_the_network_names_the_chain_and_every_contract(client, chain):
    network = client.get("/network").json()
    assert network["chain_id"] == chain.chain_id
    assert network["rpc_url"] == chain.settings.rpc_url
    for name in ("ConsentRegistry", "ProvenanceRegistry", "ProjectEscrow", "DatasetMarketplace"):
        assert network["contracts"][name] == chain.deployments.address_of(name)
    assert network["token"] == chain.deployments.address_of("TestRewardToken")
    assert (network["token_symbol"], network["token_decimals"]) == ("PRVT", 18)
