import logging

import pytest
from eth_account import Account
from pydantic import SecretStr

from backend.chain.keys import dev_keys, is_dev_key, operator_account
from backend.core.config import Settings
from backend.core.errors import ConfigurationError

HARDHAT_ACCOUNT_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def test_dev_keys_are_hardhats_well_known_accounts():
    assert len(dev_keys()) == 20
    assert is_dev_key(HARDHAT_ACCOUNT_0)
    assert is_dev_key(HARDHAT_ACCOUNT_0.upper().replace("0X", "0x"))
    assert not is_dev_key(Account.create().key.hex())


def test_local_mode_defaults_to_the_first_dev_account():
    account = operator_account(Settings(), 31337)
    assert account.address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.mark.parametrize("key", [None, HARDHAT_ACCOUNT_0])
def test_dev_key_refused_on_a_non_local_chain(key, caplog):
    settings = Settings(operator_key=SecretStr(key) if key else None)
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigurationError) as info:
        operator_account(settings, 11155111)
    assert "11155111" in info.value.detail
    assert HARDHAT_ACCOUNT_0[2:] not in info.value.detail + caplog.text


def test_own_key_accepted_on_any_chain():
    own = Account.create()
    settings = Settings(operator_key=SecretStr(own.key.hex()))
    assert operator_account(settings, 11155111).address == own.address


def test_invalid_key_error_does_not_echo_it():
    secret = "0x" + "zz" * 32
    with pytest.raises(ConfigurationError) as info:
        operator_account(Settings(operator_key=SecretStr(secret)), 31337)
    assert "zz" not in info.value.detail and "not a valid private key" in info.value.detail


def test_settings_never_print_the_key():
    settings = Settings(operator_key=SecretStr(HARDHAT_ACCOUNT_0))
    assert HARDHAT_ACCOUNT_0 not in repr(settings) and HARDHAT_ACCOUNT_0 not in str(settings)


def test_production_refuses_unsafe_defaults():
    with pytest.raises(ValueError, match="PROVENANT_SESSION_SECRET"):
        Settings(environment="production", operator_key=SecretStr(Account.create().key.hex()))
    with pytest.raises(ValueError, match="PROVENANT_OPERATOR_KEY"):
        Settings(environment="production", session_secret=SecretStr("s" * 32))
