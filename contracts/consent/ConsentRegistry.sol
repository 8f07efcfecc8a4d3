// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

import {IConsentRegistry} from "../interfaces/IConsentRegistry.sol";

/**
 * @title ConsentRegistry
 * @notice On-chain record of contributors' consent to data-use terms and of its revocation.
 * @dev Contributors sign EIP-712 messages and an operator relays them, so contributors pay no
 * gas. The registry verifies every signature itself (ECDSA for EOAs, ERC-1271 for contracts),
 * so the relayer cannot record or revoke consent for anyone who did not sign. Consents (with or
 * without an end date) and revocations share one nonce sequence per contributor, which makes
 * each signed message usable once and in order. A record fills three slots: contributor, terms
 * version and scopes; royalty and the three timestamps; terms hash.
 */
contract ConsentRegistry is IConsentRegistry, EIP712, AccessControl, Nonces {
    /// @notice Role allowed to submit signed messages on contributors' behalf.
    bytes32 public constant RELAYER_ROLE = keccak256("RELAYER_ROLE");

    /// @notice EIP-712 type hash of a consent.
    bytes32 public constant CONSENT_TYPEHASH =
        keccak256(
            "Consent(address contributor,uint32 termsVersion,bytes32 termsHash,uint64 scopes,uint16 royaltyBps,uint256 nonce,uint256 deadline)"
        );

    /// @notice EIP-712 type hash of a consent with an end date.
    bytes32 public constant CONSENT_V2_TYPEHASH =
        keccak256(
            "ConsentV2(address contributor,uint32 termsVersion,bytes32 termsHash,uint64 scopes,uint16 royaltyBps,uint64 validUntil,uint256 nonce,uint256 deadline)"
        );

    /// @notice EIP-712 type hash of a revocation.
    bytes32 public constant REVOCATION_TYPEHASH =
        keccak256("Revocation(address contributor,bytes32 consentHash,uint256 nonce,uint256 deadline)");

    uint16 private constant _MAX_BPS = 10_000;

    mapping(bytes32 consentHash => ConsentRecord) private _consents;
    mapping(address contributor => bytes32 consentHash) private _activeConsent;

    /**
     * @notice Deploys the registry.
     * @param admin Receives `DEFAULT_ADMIN_ROLE` (grants and revokes relayers).
     * @param relayer Receives `RELAYER_ROLE`.
     */
    constructor(address admin, address relayer) EIP712("Provenant ConsentRegistry", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(RELAYER_ROLE, relayer);
    }

    /// @inheritdoc IConsentRegistry
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IConsentRegistry
    function recordConsent(
        address contributor,
        uint32 termsVersion,
        bytes32 termsHash,
        uint64 scopes,
        uint16 royaltyBps,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external returns (bytes32 consentHash) {
        _checkConsent(contributor, scopes, royaltyBps, deadline);
        consentHash = _hashTypedDataV4(
            keccak256(
                abi.encode(CONSENT_TYPEHASH, contributor, termsVersion, termsHash, scopes, royaltyBps, nonce, deadline)
            )
        );
        _record(contributor, consentHash, signature, nonce);
        _consents[consentHash] = ConsentRecord({
            contributor: contributor,
            termsVersion: termsVersion,
            scopes: scopes,
            royaltyBps: royaltyBps,
            recordedAt: uint64(block.timestamp),
            revokedAt: 0,
            validUntil: 0,
            termsHash: termsHash
        });
        emit ConsentRecorded(contributor, consentHash, termsVersion, termsHash, scopes, royaltyBps, nonce);
    }

    /// @inheritdoc IConsentRegistry
    function recordConsentV2(
        address contributor,
        uint32 termsVersion,
        bytes32 termsHash,
        uint64 scopes,
        uint16 royaltyBps,
        uint64 validUntil,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external returns (bytes32 consentHash) {
        _checkConsent(contributor, scopes, royaltyBps, deadline);
        if (validUntil != 0 && validUntil <= block.timestamp) {
            revert ConsentRegistryEndInPast(validUntil);
        }
        consentHash = _hashTypedDataV4(
            keccak256(
                abi.encode(
                    CONSENT_V2_TYPEHASH,
                    contributor,
                    termsVersion,
                    termsHash,
                    scopes,
                    royaltyBps,
                    validUntil,
                    nonce,
                    deadline
                )
            )
        );
        _record(contributor, consentHash, signature, nonce);
        _consents[consentHash] = ConsentRecord({
            contributor: contributor,
            termsVersion: termsVersion,
            scopes: scopes,
            royaltyBps: royaltyBps,
            recordedAt: uint64(block.timestamp),
            revokedAt: 0,
            validUntil: validUntil,
            termsHash: termsHash
        });
        emit ConsentRecorded(contributor, consentHash, termsVersion, termsHash, scopes, royaltyBps, nonce);
        if (validUntil != 0) {
            emit ConsentEndDate(contributor, consentHash, validUntil);
        }
    }

    /// @inheritdoc IConsentRegistry
    function revokeConsent(
        address contributor,
        bytes32 consentHash,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkSubmission(contributor, deadline);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(REVOCATION_TYPEHASH, contributor, consentHash, nonce, deadline))
        );
        _checkSignature(contributor, digest, signature);
        _consumeNonce(contributor, nonce);
        ConsentRecord storage record = _consents[consentHash];
        if (record.recordedAt == 0) {
            revert ConsentRegistryUnknownConsent(consentHash);
        }
        if (record.contributor != contributor) {
            revert ConsentRegistryNotContributor(consentHash, contributor);
        }
        if (record.revokedAt != 0) {
            revert ConsentRegistryAlreadyRevoked(consentHash);
        }

        record.revokedAt = uint64(block.timestamp);
        if (_activeConsent[contributor] == consentHash) {
            delete _activeConsent[contributor];
        }
        emit ConsentRevoked(contributor, consentHash, nonce);
    }

    /// @inheritdoc IConsentRegistry
    function consentRecord(bytes32 consentHash) external view returns (ConsentRecord memory) {
        return _consents[consentHash];
    }

    /// @inheritdoc IConsentRegistry
    function isConsentActive(bytes32 consentHash) external view returns (bool) {
        return _isActive(_consents[consentHash]);
    }

    /// @inheritdoc IConsentRegistry
    function consentInForceAt(bytes32 consentHash, uint64 timestamp, uint64 scope) external view returns (bool) {
        ConsentRecord storage record = _consents[consentHash];
        uint64 recordedAt = record.recordedAt;
        uint64 revokedAt = record.revokedAt;
        uint64 validUntil = record.validUntil;
        return
            recordedAt != 0 &&
            recordedAt <= timestamp &&
            (revokedAt == 0 || revokedAt > timestamp) &&
            (validUntil == 0 || timestamp <= validUntil) &&
            record.scopes & scope == scope;
    }

    /// @inheritdoc IConsentRegistry
    function activeConsentOf(address contributor) external view returns (bytes32) {
        bytes32 consentHash = _activeConsent[contributor];
        // A revocation clears the slot; an end date passes without a transaction, so check it here.
        return consentHash != bytes32(0) && _isActive(_consents[consentHash]) ? consentHash : bytes32(0);
    }

    /// @inheritdoc IConsentRegistry
    function nonces(address owner) public view override(IConsentRegistry, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    /// @dev Checks the fields shared by both consent types and the submission itself.
    function _checkConsent(address contributor, uint64 scopes, uint16 royaltyBps, uint256 deadline) private view {
        _checkSubmission(contributor, deadline);
        if (scopes == 0) {
            revert ConsentRegistryEmptyScopes();
        }
        if (royaltyBps > _MAX_BPS) {
            revert ConsentRegistryInvalidRoyalty(royaltyBps);
        }
    }

    /**
     * @dev Verifies the signature of `consentHash`, consumes the nonce and makes the consent the
     * contributor's active one; the caller then writes the record and emits the events.
     */
    function _record(address contributor, bytes32 consentHash, bytes calldata signature, uint256 nonce) private {
        _checkSignature(contributor, consentHash, signature);
        _consumeNonce(contributor, nonce);
        // Unreachable once the nonce is consumed (the nonce is part of the hash); kept so that a
        // record can never be overwritten whatever changes elsewhere.
        if (_consents[consentHash].recordedAt != 0) {
            revert ConsentRegistryAlreadyRecorded(consentHash);
        }
        _activeConsent[contributor] = consentHash;
    }

    /// @dev Whether `record` is recorded, not revoked and not past its end date at this block.
    function _isActive(ConsentRecord storage record) private view returns (bool) {
        uint64 validUntil = record.validUntil;
        return
            record.recordedAt != 0 &&
            record.revokedAt == 0 &&
            (validUntil == 0 || block.timestamp <= validUntil);
    }

    /// @dev Reverts unless the caller may submit for `contributor` and `deadline` has not passed.
    function _checkSubmission(address contributor, uint256 deadline) private view {
        if (msg.sender != contributor && !hasRole(RELAYER_ROLE, msg.sender)) {
            revert ConsentRegistryUnauthorizedRelayer(msg.sender);
        }
        if (block.timestamp > deadline) {
            revert ConsentRegistryExpiredSignature(deadline);
        }
    }

    /// @dev Reverts unless `signature` is `contributor`'s signature of `digest` (ECDSA or ERC-1271).
    function _checkSignature(address contributor, bytes32 digest, bytes calldata signature) private view {
        if (!SignatureChecker.isValidSignatureNow(contributor, digest, signature)) {
            revert ConsentRegistryInvalidSignature(contributor);
        }
    }

    /// @dev Consumes `contributor`'s nonce, reverting unless `nonce` is the current one.
    function _consumeNonce(address contributor, uint256 nonce) private {
        uint256 expected = _useNonce(contributor);
        if (nonce != expected) {
            revert ConsentRegistryInvalidNonce(contributor, expected);
        }
    }
}
