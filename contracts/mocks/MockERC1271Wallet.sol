// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/**
 * @title MockERC1271Wallet
 * @notice Test-only smart wallet controlled by one EOA, used to exercise the ERC-1271 path of
 * signature verification.
 * @dev A signature is valid when it is a 65-byte ECDSA signature of `hash` by the owner. Real
 * wallets bind the hash to their own address to stop cross-wallet replay; this mock does not.
 */
contract MockERC1271Wallet is IERC1271 {
    /// @notice The EOA whose signatures this wallet accepts.
    address public immutable owner;

    /**
     * @notice Deploys a wallet controlled by `owner_`.
     * @param owner_ The EOA whose signatures are accepted.
     */
    constructor(address owner_) {
        owner = owner_;
    }

    /**
     * @notice ERC-1271 check: returns the magic value when the owner signed `hash`.
     * @param hash The signed digest.
     * @param signature A 65-byte ECDSA signature.
     * @return magicValue `IERC1271.isValidSignature.selector` if valid, otherwise `0xffffffff`.
     */
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4 magicValue) {
        (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecoverCalldata(hash, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == owner) {
            return IERC1271.isValidSignature.selector;
        }
        return 0xffffffff;
    }
}
