// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/**
 * @title MockNoReturnToken
 * @notice Test-only ERC-20 whose `transfer`, `transferFrom` and `approve` return nothing, as USDT's
 * do on Ethereum mainnet; used to check that callers go through `SafeERC20`.
 * @dev Deliberately does not implement `IERC20` (whose functions return `bool`). Failures revert
 * without data, like old tokens. Anyone may mint.
 */
contract MockNoReturnToken {
    /// @notice The number of decimals, fixed at 6 like USDT.
    uint8 public constant decimals = 6;

    /// @notice Total amount minted.
    uint256 public totalSupply;

    /// @notice Balances by account.
    mapping(address account => uint256) public balanceOf;

    /// @notice Allowances by owner and spender.
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    /**
     * @notice Emitted on every balance move, as ERC-20 requires.
     * @param from The sender (zero for a mint).
     * @param to The recipient.
     * @param value The amount moved.
     */
    event Transfer(address indexed from, address indexed to, uint256 value);

    /**
     * @notice Emitted when an allowance is set, as ERC-20 requires.
     * @param owner The token owner.
     * @param spender The spender.
     * @param value The new allowance.
     */
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /**
     * @notice Creates `amount` tokens for `to`.
     * @param to The recipient.
     * @param amount The amount.
     */
    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /**
     * @notice Moves `amount` from the caller to `to`; returns nothing.
     * @param to The recipient.
     * @param amount The amount.
     */
    function transfer(address to, uint256 amount) external {
        _move(msg.sender, to, amount);
    }

    /**
     * @notice Moves `amount` from `from` to `to` using the caller's allowance; returns nothing.
     * @param from The owner of the tokens.
     * @param to The recipient.
     * @param amount The amount.
     */
    function transferFrom(address from, address to, uint256 amount) external {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= amount);
        if (allowed != type(uint256).max) {
            allowance[from][msg.sender] = allowed - amount;
        }
        _move(from, to, amount);
    }

    /**
     * @notice Sets the caller's allowance for `spender`; returns nothing.
     * @param spender The spender.
     * @param amount The allowance.
     */
    function approve(address spender, uint256 amount) external {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
    }

    function _move(address from, address to, uint256 amount) private {
        require(balanceOf[from] >= amount);
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}
