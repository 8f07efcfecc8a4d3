// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/**
 * @title IConsentRegistry
 * @notice Records contributors' EIP-712-signed consent to data-use terms, and its revocation.
 * @dev A consent is identified by its EIP-712 digest (the "consent hash"), which anyone can
 * recompute off chain from the signed fields and the registry's domain. Two message types exist in
 * the same domain: `Consent` (no end date) and `ConsentV2`, which adds `validUntil`, the last
 * second at which the consent may be used for a newly published dataset version.
 */
interface IConsentRegistry {
    /**
     * @notice A recorded consent.
     * @param contributor The account that signed the consent.
     * @param termsVersion The version number of the data-use terms consented to.
     * @param scopes Bitmask of the data uses permitted; never zero.
     * @param royaltyBps The contributor's royalty share in basis points (at most 10 000).
     * @param recordedAt Block timestamp at which the consent was recorded; zero means no such consent.
     * @param revokedAt Block timestamp at which the consent was revoked; zero while in force.
     * @param validUntil Last timestamp (inclusive) at which the consent is in force; zero means no
     * end date (always zero for consents recorded with {recordConsent}).
     * @param termsHash Hash of the full text of the terms.
     */
    struct ConsentRecord {
        address contributor;
        uint32 termsVersion;
        uint64 scopes;
        uint16 royaltyBps;
        uint64 recordedAt;
        uint64 revokedAt;
        uint64 validUntil;
        bytes32 termsHash;
    }

    /**
     * @notice Emitted when a consent is recorded.
     * @param contributor The account that signed the consent.
     * @param consentHash The EIP-712 digest of the consent, its identifier.
     * @param termsVersion The version number of the terms.
     * @param termsHash Hash of the full text of the terms.
     * @param scopes Bitmask of the data uses permitted.
     * @param royaltyBps The royalty share in basis points.
     * @param nonce The contributor's nonce consumed by this consent.
     */
    event ConsentRecorded(
        address indexed contributor,
        bytes32 indexed consentHash,
        uint32 termsVersion,
        bytes32 termsHash,
        uint64 scopes,
        uint16 royaltyBps,
        uint256 nonce
    );

    /**
     * @notice Emitted, after {ConsentRecorded}, when a consent with an end date is recorded.
     * @param contributor The account that signed the consent.
     * @param consentHash The consent.
     * @param validUntil Last timestamp (inclusive) at which the consent is in force; never zero.
     */
    event ConsentEndDate(address indexed contributor, bytes32 indexed consentHash, uint64 validUntil);

    /**
     * @notice Emitted when a consent is revoked.
     * @param contributor The account that signed the revocation.
     * @param consentHash The revoked consent.
     * @param nonce The contributor's nonce consumed by this revocation.
     */
    event ConsentRevoked(address indexed contributor, bytes32 indexed consentHash, uint256 nonce);

    /**
     * @notice The caller is neither a relayer nor the contributor.
     * @param sender The caller.
     */
    error ConsentRegistryUnauthorizedRelayer(address sender);

    /**
     * @notice The signed message's deadline has passed.
     * @param deadline The deadline, a unix timestamp in seconds.
     */
    error ConsentRegistryExpiredSignature(uint256 deadline);

    /**
     * @notice A consent must permit at least one scope.
     */
    error ConsentRegistryEmptyScopes();

    /**
     * @notice The royalty exceeds 10 000 basis points.
     * @param royaltyBps The rejected royalty.
     */
    error ConsentRegistryInvalidRoyalty(uint16 royaltyBps);

    /**
     * @notice The consent's end date is not after the current block's timestamp.
     * @param validUntil The rejected end date, a unix timestamp in seconds.
     */
    error ConsentRegistryEndInPast(uint64 validUntil);

    /**
     * @notice The signature is not the contributor's signature of the message (ECDSA or ERC-1271).
     * @param contributor The account the message claims as signer.
     */
    error ConsentRegistryInvalidSignature(address contributor);

    /**
     * @notice The message's nonce is not the contributor's next nonce (a replay or an out-of-order message).
     * @param contributor The contributor.
     * @param expectedNonce The contributor's current nonce.
     */
    error ConsentRegistryInvalidNonce(address contributor, uint256 expectedNonce);

    /**
     * @notice The consent is already recorded.
     * @param consentHash The consent.
     */
    error ConsentRegistryAlreadyRecorded(bytes32 consentHash);

    /**
     * @notice No consent with this hash has been recorded.
     * @param consentHash The hash looked up.
     */
    error ConsentRegistryUnknownConsent(bytes32 consentHash);

    /**
     * @notice The consent belongs to another contributor.
     * @param consentHash The consent.
     * @param contributor The account that tried to revoke it.
     */
    error ConsentRegistryNotContributor(bytes32 consentHash, address contributor);

    /**
     * @notice The consent has already been revoked.
     * @param consentHash The consent.
     */
    error ConsentRegistryAlreadyRevoked(bytes32 consentHash);

    /**
     * @notice Records `contributor`'s signed consent and makes it their active consent.
     * @dev Callable by a relayer or by the contributor. The returned hash is the EIP-712 digest of
     * `Consent(contributor,termsVersion,termsHash,scopes,royaltyBps,nonce,deadline)`.
     * @param contributor The signer of the consent (an EOA or an ERC-1271 contract).
     * @param termsVersion The version number of the terms.
     * @param termsHash Hash of the full text of the terms.
     * @param scopes Bitmask of the data uses permitted; must be non-zero.
     * @param royaltyBps The royalty share in basis points; at most 10 000.
     * @param nonce The contributor's current nonce.
     * @param deadline Last timestamp (inclusive) at which the signature may be submitted.
     * @param signature The contributor's signature of the EIP-712 digest.
     * @return consentHash The EIP-712 digest, which identifies the consent.
     */
    function recordConsent(
        address contributor,
        uint32 termsVersion,
        bytes32 termsHash,
        uint64 scopes,
        uint16 royaltyBps,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external returns (bytes32 consentHash);

    /**
     * @notice Records `contributor`'s signed consent with an end date and makes it their active consent.
     * @dev Same rules as {recordConsent}, and `validUntil` must be zero (no end date) or after the
     * current block's timestamp. The returned hash is the EIP-712 digest of
     * `ConsentV2(contributor,termsVersion,termsHash,scopes,royaltyBps,validUntil,nonce,deadline)`.
     * Emits {ConsentRecorded}, then {ConsentEndDate} when `validUntil` is not zero.
     * @param contributor The signer of the consent (an EOA or an ERC-1271 contract).
     * @param termsVersion The version number of the terms.
     * @param termsHash Hash of the full text of the terms.
     * @param scopes Bitmask of the data uses permitted; must be non-zero.
     * @param royaltyBps The royalty share in basis points; at most 10 000.
     * @param validUntil Last timestamp (inclusive) at which the consent is in force; zero for none.
     * @param nonce The contributor's current nonce (shared with {recordConsent} and {revokeConsent}).
     * @param deadline Last timestamp (inclusive) at which the signature may be submitted.
     * @param signature The contributor's signature of the EIP-712 digest.
     * @return consentHash The EIP-712 digest, which identifies the consent.
     */
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
    ) external returns (bytes32 consentHash);

    /**
     * @notice Revokes one of `contributor`'s consents on their signed request.
     * @dev Callable by a relayer or by the contributor. Shares the nonce sequence with consents.
     * @param contributor The signer of the revocation and owner of the consent.
     * @param consentHash The consent to revoke.
     * @param nonce The contributor's current nonce.
     * @param deadline Last timestamp (inclusive) at which the signature may be submitted.
     * @param signature The contributor's signature of the EIP-712
     * `Revocation(contributor,consentHash,nonce,deadline)` digest.
     */
    function revokeConsent(
        address contributor,
        bytes32 consentHash,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /**
     * @notice Returns a consent record; all fields are zero for an unknown hash.
     * @param consentHash The consent.
     * @return The stored record.
     */
    function consentRecord(bytes32 consentHash) external view returns (ConsentRecord memory);

    /**
     * @notice Tells whether a consent has been recorded, not revoked, and has not reached its end.
     * @param consentHash The consent.
     * @return True if the consent is in force now (at the current block's timestamp).
     */
    function isConsentActive(bytes32 consentHash) external view returns (bool);

    /**
     * @notice Tells whether a consent was in force at `timestamp` for every use in `scope`.
     * @dev True when the consent was recorded at or before `timestamp`, not revoked at or before
     * it (`revokedAt` zero or after `timestamp`), not ended (`validUntil` zero or at or after
     * `timestamp`), and its scopes include every bit of `scope` (a zero `scope` asks for none).
     * Timestamps in the future are answered with what is recorded now.
     * @param consentHash The consent.
     * @param timestamp The moment asked about, a unix timestamp in seconds.
     * @param scope Bitmask of the uses that must all be permitted.
     * @return True if the consent covered `scope` at `timestamp`.
     */
    function consentInForceAt(bytes32 consentHash, uint64 timestamp, uint64 scope) external view returns (bool);

    /**
     * @notice Returns the contributor's most recently recorded consent, unless it was revoked or
     * has reached its end date.
     * @param contributor The contributor.
     * @return The consent hash, or zero if there is none.
     */
    function activeConsentOf(address contributor) external view returns (bytes32);

    /**
     * @notice Returns the nonce the contributor's next signed message must carry.
     * @param owner The contributor.
     * @return The current nonce.
     */
    function nonces(address owner) external view returns (uint256);

    /**
     * @notice Returns the EIP-712 domain separator for the current chain.
     * @return The domain separator.
     */
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32);
}
