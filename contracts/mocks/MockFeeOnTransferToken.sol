// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/**
 * @title MockFeeOnTransferToken
 * @notice Test-only ERC-20 that burns a 1% fee on every transfer, so recipients receive less than
 * the amount sent; used to check that such tokens are refused.
 * @dev Mints are fee-free. Anyone may mint.
 */
contract MockFeeOnTransferToken is ERC20 {
    /// @notice The fee, in basis points of each transfer.
    uint256 public constant FEE_BPS = 100;

    /// @notice Deploys the token.
    constructor() ERC20("Mock Fee Token", "mFEE") {}

    /**
     * @notice Creates `amount` tokens for `to`.
     * @param to The recipient.
     * @param amount The amount.
     */
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @dev Burns the fee from the sender and moves the rest.
    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = (value * FEE_BPS) / 10_000;
        super._update(from, address(0), fee);
        super._update(from, to, value - fee);
    }
}
