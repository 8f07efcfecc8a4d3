// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/**
 * @title MockReentrantToken
 * @notice Test-only ERC-20 that, once armed, calls back into a target contract whenever tokens
 * leave it; used to check that the target's guards stop re-entrant calls.
 * @dev The callback runs after the balances move, and its revert (if any) is bubbled up so the
 * test sees the target's own error. It fires once per arming. Anyone may mint or arm.
 */
contract MockReentrantToken is ERC20 {
    /// @notice The contract called back; zero when disarmed.
    address public target;

    /// @notice The calldata of the callback.
    bytes public payload;

    /// @notice Deploys the token.
    constructor() ERC20("Mock Reentrant Token", "mRE") {}

    /**
     * @notice Creates `amount` tokens for `to`.
     * @param to The recipient.
     * @param amount The amount.
     */
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /**
     * @notice Arms the callback: the next transfer out of `target_` calls `target_` with `payload_`.
     * @param target_ The contract to call back.
     * @param payload_ The calldata to call it with.
     */
    function arm(address target_, bytes calldata payload_) external {
        target = target_;
        payload = payload_;
    }

    /// @dev Moves the balances, then calls back the armed target if the tokens left it.
    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        address armed = target;
        if (armed != address(0) && from == armed) {
            target = address(0);
            (bool ok, bytes memory returned) = armed.call(payload);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(returned, 0x20), mload(returned))
                }
            }
        }
    }
}
