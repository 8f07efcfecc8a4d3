"""The deployments file: contract addresses per chain, written by `provenant deploy`."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core.errors import ConfigurationError


@dataclass
class Deployments:
    path: Path
    chain_id: int
    contracts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def file_for(cls, directory: Path, chain_id: int) -> Path:
        return directory / f"{chain_id}.json"

    @classmethod
    def load(cls, directory: Path, chain_id: int) -> "Deployments":
        path = cls.file_for(directory, chain_id)
        if not path.exists():
            return cls(path=path, chain_id=chain_id)
        data = json.loads(path.read_text())
        return cls(path=path, chain_id=chain_id, contracts=data.get("contracts", {}))

    def address_of(self, name: str) -> str:
        entry = self.contracts.get(name)
        if entry is None:
            raise ConfigurationError(
                f"{name} is not deployed on chain {self.chain_id} (no entry in {self.path}); "
                "run `provenant deploy`"
            )
        return str(entry["address"])

    def record(self, name: str, *, address: str, tx_hash: str, block_number: int) -> None:
        self.contracts[name] = {
            "address": address,
            "txHash": tx_hash,
            "blockNumber": block_number,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(
            json.dumps({"chainId": self.chain_id, "contracts": self.contracts}, indent=2)
        )
        tmp.replace(self.path)  # atomic: a crash never leaves half a file
