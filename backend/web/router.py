"""``GET /network`` and the built web app.

The app's pages are static files: built by `make build` (Vite) into ``frontend/dist`` and
served here, so `make run` serves them with the API and needs nothing more. Its routes live in
the URL's fragment (``/#/contribute``), so no page path can shadow an API path.
"""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from backend.chain.deploy import TEST_TOKEN_DECIMALS, TEST_TOKEN_SYMBOL
from backend.deps import ChainDep, SettingsDep

router = APIRouter(tags=["web"])


class NetworkPublic(BaseModel):
    chain_id: int
    rpc_url: str
    contracts: dict[str, str]
    token: str
    token_symbol: str
    token_decimals: int


@router.get("/network", response_model=NetworkPublic)
def network(chain: ChainDep, settings: SettingsDep) -> NetworkPublic:
    """The chain a wallet must be on, a JSON-RPC endpoint for reads (the auditor's page reads
    the chain itself, not through us) and the contracts' addresses."""
    contracts = {name: str(entry["address"]) for name, entry in chain.deployments.contracts.items()}
    token = contracts.get("TestRewardToken", "")
    return NetworkPublic(
        chain_id=chain.chain_id,
        rpc_url=settings.public_rpc_url or settings.rpc_url,
        contracts=contracts,
        token=token,
        token_symbol=TEST_TOKEN_SYMBOL,
        token_decimals=TEST_TOKEN_DECIMALS,
    )


def mount_web_app(app: FastAPI, dist: Path) -> bool:
    """Serve the built app at ``/`` (after every API route); False when it is not built."""
    if not (dist / "index.html").is_file():
        return False
    app.mount("/", StaticFiles(directory=dist, html=True), name="web")
    return True
