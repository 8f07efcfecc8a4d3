"""Operator key handling: the well-known development keys are only for local chains."""

from functools import lru_cache

from eth_account import Account
from eth_account.signers.local import LocalAccount

from backend.core.config import LOCAL_CHAIN_IDS, Settings
from backend.core.errors import ConfigurationError

# The mnemonic Hardhat and Anvil fund their default accounts from; anyone can sign with them.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNT_COUNT = 20


@lru_cache
def dev_keys() -> tuple[str, ...]:
    Account.enable_unaudited_hdwallet_features()
    return tuple(
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.hex()
        for i in range(DEV_ACCOUNT_COUNT)
    )


def _normalise(key: str) -> str:
    key = key.strip().lower()
    return key[2:] if key.startswith("0x") else key


def is_dev_key(key: str) -> bool:
    return _normalise(key) in {_normalise(k) for k in dev_keys()}


def operator_account(settings: Settings, chain_id: int) -> LocalAccount:
    """Return the operator's signer, refusing development keys on non-local chains."""
    configured = settings.operator_key.get_secret_value() if settings.operator_key else None
    if configured is None:
        if settings.environment != "local" or chain_id not in LOCAL_CHAIN_IDS:
            raise ConfigurationError(
                f"PROVENANT_OPERATOR_KEY is not set; chain {chain_id} needs a real operator key"
            )
        configured = dev_keys()[0]
    if chain_id not in LOCAL_CHAIN_IDS and is_dev_key(configured):
        raise ConfigurationError(
            f"refusing a well-known development key as operator on chain {chain_id}: "
            "set PROVENANT_OPERATOR_KEY to a private key of your own"
        )
    try:
        return Account.from_key(configured)
    except Exception as exc:
        # Never echo the key itself, only that it is unusable.
        raise ConfigurationError("PROVENANT_OPERATOR_KEY is not a valid private key") from exc
