"""Load contract ABIs and bytecode from Hardhat's artifacts (never copied by hand)."""

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_utils import keccak

from backend.core.errors import ConfigurationError


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str


def _artifact_files(artifacts_dir: Path) -> list[Path]:
    root = artifacts_dir / "contracts"
    return [p for p in root.rglob("*.json") if not p.name.endswith(".dbg.json")]


@lru_cache
def load_artifact(artifacts_dir: Path, name: str) -> Artifact:
    matches = [p for p in _artifact_files(artifacts_dir) if p.stem == name]
    if not matches:
        raise ConfigurationError(
            f"no Hardhat artifact for contract {name!r} under {artifacts_dir}; "
            "run `npx hardhat compile` (or `make build`) first"
        )
    data = json.loads(matches[0].read_text())
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
    )


def _canonical_type(param: dict[str, Any]) -> str:
    kind = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


@dataclass(frozen=True)
class ErrorSpec:
    name: str
    arg_names: tuple[str, ...]
    arg_types: tuple[str, ...]


@lru_cache
def custom_errors(artifacts_dir: Path) -> dict[bytes, ErrorSpec]:
    """Map 4-byte selectors to every custom error declared in any compiled contract."""
    errors: dict[bytes, ErrorSpec] = {}
    for path in _artifact_files(artifacts_dir):
        for item in json.loads(path.read_text()).get("abi", []):
            if item.get("type") != "error":
                continue
            types = tuple(_canonical_type(i) for i in item["inputs"])
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            errors[selector] = ErrorSpec(
                item["name"], tuple(i["name"] for i in item["inputs"]), types
            )
    return errors
