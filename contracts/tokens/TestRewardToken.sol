// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/**
 * @title TestRewardToken
 * @notice Mintable ERC-20 with ERC-2612 permit, used as the reward token on local and test chains.
 * @dev Nothing else in Provenant depends on this contract: rewards work with any ERC-20. The
 * configurable decimals let tests cover both 6-decimal (stablecoin-like) and 18-decimal tokens.
 */
contract TestRewardToken is ERC20, ERC20Permit, Ownable {
    uint8 private immutable _decimals;

    /**
     * @notice Deploys the token.
     * @param name_ The ERC-20 name; also the EIP-712 domain name used by `permit`.
     * @param symbol_ The ERC-20 symbol.
     * @param decimals_ The number of decimals reported by {decimals}.
     * @param initialOwner The account allowed to mint.
     */
    constructor(
        string memory name_,
        string memory symbol_,
        uint8 decimals_,
        address initialOwner
    ) ERC20(name_, symbol_) ERC20Permit(name_) Ownable(initialOwner) {
        _decimals = decimals_;
    }

    /**
     * @notice Creates `amount` tokens and assigns them to `to`.
     * @dev Only the owner may mint.
     * @param to The recipient of the new tokens.
     * @param amount The amount to mint, in the token's smallest unit.
     */
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /**
     * @notice Returns the number of decimals set at deployment.
     * @return The token's decimals.
     */
    function decimals() public view override returns (uint8) {
        return _decimals;
    }
}
