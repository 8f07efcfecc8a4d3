// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/**
 * @title IDatasetMarketplace
 * @notice Sells licences to published dataset versions and shares each sale between the platform,
 * the project's requester and a royalty pool that the version's contributors claim from.
 * @dev A version is identified by `versionId = (projectId << 32) | version`, where `version` counts
 * from 1 per project. Its terms are fixed at registration: price and token, the split of each sale
 * in basis points (`feeBps` to the treasury, `requesterBps` to the requester, `poolBps` to the
 * pool; they sum to 10 000 and `poolBps` is at least the royalty floor), and a weight tree: an
 * OpenZeppelin `StandardMerkleTree` ("standard-v1") of `(address account, uint256 weight)` leaves,
 * a leaf being `keccak256(bytes.concat(keccak256(abi.encode(account, weight))))`. An account may
 * claim, at any time, `pool * weight / totalWeight` (rounded down) minus what it already claimed,
 * where `pool` is the total the version's sales have put in the pool so far. An account's first
 * paid claim proves its weight with a Merkle proof; the contract keeps the weight (see
 * {provenWeight}) and pays later claims on it with no proof ({claimRoyaltyAgain}, or
 * {claimRoyalty} with the same weight and any proof, e.g. an empty one). The treasury's fees
 * and the requester's shares are credited as internal balances, withdrawn with {withdrawEarnings}.
 * For each version, the total paid to contributors never exceeds its pool, whatever its tree says.
 */
interface IDatasetMarketplace {
    /**
     * @notice The terms of a dataset version, as the requester signs them (EIP-712 primary type
     * `VersionTerms`, fields in this order) and as they are registered.
     * @param projectId The project, as registered in the ProjectEscrow (below 2**224).
     * @param version The version number: 1 for a project's first, then each previous plus one.
     * @param manifestHash keccak256 of the version's manifest (an RFC 8785 JSON document).
     * @param itemRoot Root of the "standard-v1" tree of the version's items.
     * @param weightRoot Root of the "standard-v1" tree of `(address, uint256)` contributor weights.
     * @param totalWeight The sum of the weights in the weight tree; non-zero, below 2**96.
     * @param price The price of a licence, in the token's smallest unit; below 2**128 (zero is free).
     * @param token The ERC-20 the price is paid in; must be a contract.
     * @param termsHash Hash of the licence terms (keccak256 of the terms document or of an SPDX id).
     * @param feeBps The treasury's share of each sale, in basis points.
     * @param requesterBps The requester's share of each sale, in basis points.
     * @param poolBps The contributors' share of each sale, in basis points; at least the royalty floor.
     * @param deadline Last timestamp (inclusive) at which a signature of these terms may be used;
     * only checked by {registerVersionFor}.
     */
    struct VersionTerms {
        uint256 projectId;
        uint32 version;
        bytes32 manifestHash;
        bytes32 itemRoot;
        bytes32 weightRoot;
        uint256 totalWeight;
        uint256 price;
        address token;
        bytes32 termsHash;
        uint16 feeBps;
        uint16 requesterBps;
        uint16 poolBps;
        uint256 deadline;
    }

    /**
     * @notice A registered version, as returned by {version}; all fields are zero for an unknown id.
     * @param projectId The project.
     * @param version The version number within the project.
     * @param requester The project's requester at registration, who receives the requester's share.
     * @param token The ERC-20 the price is paid in.
     * @param price The price of a licence.
     * @param manifestHash keccak256 of the manifest.
     * @param itemRoot Root of the item tree.
     * @param weightRoot Root of the weight tree.
     * @param totalWeight The sum of the weights.
     * @param termsHash Hash of the licence terms.
     * @param feeBps The treasury's share, in basis points.
     * @param requesterBps The requester's share, in basis points.
     * @param poolBps The contributors' share, in basis points.
     * @param withdrawn Whether the version was withdrawn from sale.
     * @param registeredAt Block timestamp of the registration.
     * @param pool Total put in the pool by sales so far.
     * @param paid Total paid out of the pool to contributors so far.
     */
    struct Version {
        uint256 projectId;
        uint32 version;
        address requester;
        address token;
        uint256 price;
        bytes32 manifestHash;
        bytes32 itemRoot;
        bytes32 weightRoot;
        uint256 totalWeight;
        bytes32 termsHash;
        uint16 feeBps;
        uint16 requesterBps;
        uint16 poolBps;
        bool withdrawn;
        uint64 registeredAt;
        uint256 pool;
        uint256 paid;
    }

    /**
     * @notice One entry of {claimMany}: the arguments of one {claimRoyalty}.
     * @param versionId The version.
     * @param account The contributor, who receives the tokens.
     * @param weight The contributor's weight in the version's weight tree.
     * @param proof The sibling hashes from the leaf up to the weight root; once the weight is
     * proven (the contributor's first paid claim), not looked at, and may be empty.
     */
    struct ClaimRequest {
        uint256 versionId;
        address account;
        uint256 weight;
        bytes32[] proof;
    }

    /**
     * @notice Emitted when a version is registered.
     * @param versionId The version's identifier, `(projectId << 32) | version`.
     * @param projectId The project.
     * @param requester The project's requester, who receives the requester's share of sales.
     * @param terms The terms registered, as given (with the signature's `deadline`, which is not kept).
     * @param registeredBy The caller: the requester, or an operator relaying the requester's signature.
     */
    event VersionRegistered(
        uint256 indexed versionId,
        uint256 indexed projectId,
        address indexed requester,
        VersionTerms terms,
        address registeredBy
    );

    /**
     * @notice Emitted when a version is withdrawn from sale; licences sold and royalties stay.
     * @param versionId The version.
     * @param by The caller: the requester or an operator.
     */
    event VersionWithdrawn(uint256 indexed versionId, address indexed by);

    /**
     * @notice Emitted when a licence is sold.
     * @dev `price == fee + requesterShare + pool`. The fee is credited to the treasury of the time
     * (see {TreasuryUpdated}), the requester's share to the version's requester.
     * @param versionId The version.
     * @param buyer The licensee, who paid.
     * @param token The token paid in.
     * @param price The amount paid.
     * @param pool The part of the price added to the version's pool.
     * @param fee The part credited to the treasury.
     * @param requesterShare The part credited to the requester.
     * @param poolTotal The version's pool after this sale.
     */
    event Licensed(
        uint256 indexed versionId,
        address indexed buyer,
        address token,
        uint256 price,
        uint256 pool,
        uint256 fee,
        uint256 requesterShare,
        uint256 poolTotal
    );

    /**
     * @notice Emitted when a contributor's royalties are paid.
     * @param versionId The version.
     * @param account The contributor, who received the tokens.
     * @param amount The amount paid by this claim.
     * @param cumulative The contributor's claimed total for the version after this claim.
     */
    event RoyaltyClaimed(uint256 indexed versionId, address indexed account, uint256 amount, uint256 cumulative);

    /**
     * @notice Emitted by {claimMany} for an entry with nothing to pay (e.g. the contributor claimed
     * in between); the batch goes on.
     * @param versionId The entry's version.
     * @param account The entry's contributor.
     * @param index The entry's position in the batch.
     * @param claimed The contributor's claimed total for the version.
     */
    event RoyaltyClaimSkipped(uint256 indexed versionId, address indexed account, uint256 index, uint256 claimed);

    /**
     * @notice Emitted when an account withdraws its earnings (fees or requester's shares) in a token.
     * @param account The account, which received the tokens.
     * @param token The token.
     * @param amount The amount withdrawn.
     */
    event EarningsWithdrawn(address indexed account, address indexed token, uint256 amount);

    /**
     * @notice Emitted when the treasury, which is credited the fees of later sales, changes
     * (also at deployment, from the zero address).
     * @param previous The previous treasury.
     * @param treasury The new treasury.
     */
    event TreasuryUpdated(address indexed previous, address indexed treasury);

    /**
     * @notice Emitted when the royalty floor for later registrations changes (also at deployment, from zero).
     * @param previous The previous floor, in basis points.
     * @param royaltyFloorBps The new floor, in basis points.
     */
    event RoyaltyFloorUpdated(uint16 previous, uint16 royaltyFloorBps);

    /**
     * @notice The project is not registered in the ProjectEscrow.
     * @param projectId The project.
     */
    error DatasetMarketplaceUnknownProject(uint256 projectId);

    /**
     * @notice The caller is not the project's requester (nor, where allowed, an operator).
     * @param projectId The project.
     * @param sender The caller.
     */
    error DatasetMarketplaceNotRequester(uint256 projectId, address sender);

    /**
     * @notice The signature is not the requester's signature of the terms (ECDSA or ERC-1271).
     * @param requester The project's requester.
     */
    error DatasetMarketplaceInvalidSignature(address requester);

    /**
     * @notice The signed terms' deadline has passed.
     * @param deadline The deadline, a unix timestamp in seconds.
     */
    error DatasetMarketplaceExpiredSignature(uint256 deadline);

    /**
     * @notice The project id does not fit in 224 bits, so it has no version ids.
     * @param projectId The project id given.
     */
    error DatasetMarketplaceProjectIdTooLarge(uint256 projectId);

    /**
     * @notice The version is already registered; versions are immutable.
     * @param versionId The version.
     */
    error DatasetMarketplaceVersionAlreadyRegistered(uint256 versionId);

    /**
     * @notice The version number is not the project's latest plus one.
     * @param projectId The project.
     * @param expected The only version that can be registered next.
     * @param given The version given.
     */
    error DatasetMarketplaceNonConsecutiveVersion(uint256 projectId, uint32 expected, uint32 given);

    /**
     * @notice The weight root is zero.
     * @param versionId The version.
     */
    error DatasetMarketplaceEmptyWeightRoot(uint256 versionId);

    /**
     * @notice The total weight is zero.
     * @param versionId The version.
     */
    error DatasetMarketplaceZeroTotalWeight(uint256 versionId);

    /**
     * @notice The total weight does not fit in 96 bits.
     * @param versionId The version.
     * @param totalWeight The total weight given.
     */
    error DatasetMarketplaceTotalWeightTooLarge(uint256 versionId, uint256 totalWeight);

    /**
     * @notice The price does not fit in 128 bits.
     * @param versionId The version.
     * @param price The price given.
     */
    error DatasetMarketplacePriceTooLarge(uint256 versionId, uint256 price);

    /**
     * @notice The token given has no code, so it cannot be an ERC-20.
     * @param token The address given.
     */
    error DatasetMarketplaceTokenNotContract(address token);

    /**
     * @notice The shares do not sum to 10 000 basis points.
     * @param feeBps The treasury's share given.
     * @param requesterBps The requester's share given.
     * @param poolBps The pool's share given.
     */
    error DatasetMarketplaceInvalidSplit(uint16 feeBps, uint16 requesterBps, uint16 poolBps);

    /**
     * @notice The pool's share is below the royalty floor.
     * @param poolBps The pool's share given.
     * @param royaltyFloorBps The current floor.
     */
    error DatasetMarketplacePoolBelowFloor(uint16 poolBps, uint16 royaltyFloorBps);

    /**
     * @notice The royalty floor exceeds 10 000 basis points.
     * @param royaltyFloorBps The floor given.
     */
    error DatasetMarketplaceInvalidRoyaltyFloor(uint16 royaltyFloorBps);

    /**
     * @notice The treasury given is the zero address.
     */
    error DatasetMarketplaceZeroTreasury();

    /**
     * @notice No version is registered with this id.
     * @param versionId The id given.
     */
    error DatasetMarketplaceUnknownVersion(uint256 versionId);

    /**
     * @notice The version was withdrawn from sale (or, for {withdrawVersion}, already is).
     * @param versionId The version.
     */
    error DatasetMarketplaceVersionWithdrawn(uint256 versionId);

    /**
     * @notice The token given is not the version's.
     * @param versionId The version.
     * @param expected The version's token.
     * @param given The token given.
     */
    error DatasetMarketplaceWrongToken(uint256 versionId, address expected, address given);

    /**
     * @notice The price given is not the version's.
     * @param versionId The version.
     * @param expected The version's price.
     * @param given The price given.
     */
    error DatasetMarketplaceWrongPrice(uint256 versionId, uint256 expected, uint256 given);

    /**
     * @notice The buyer already holds a licence to the version.
     * @param versionId The version.
     * @param buyer The buyer.
     */
    error DatasetMarketplaceAlreadyLicensed(uint256 versionId, address buyer);

    /**
     * @notice The marketplace's balance grew by another amount than the price: the token takes a
     * fee on transfer (or otherwise changes balances), which the marketplace refuses.
     * @param token The token.
     * @param expected The amount transferred.
     * @param received The amount the marketplace's balance grew by.
     */
    error DatasetMarketplaceFeeOnTransfer(address token, uint256 expected, uint256 received);

    /**
     * @notice The permit failed and the allowance it was to set is not there either.
     * @param token The token.
     * @param owner The buyer, who signed the permit.
     * @param allowance The marketplace's current allowance from `owner`.
     * @param amount The price to pay.
     */
    error DatasetMarketplacePermitFailed(address token, address owner, uint256 allowance, uint256 amount);

    /**
     * @notice The proof does not lead from `(account, weight)` to the version's weight root.
     * @param versionId The version.
     * @param account The account claimed for.
     * @param weight The weight claimed.
     */
    error DatasetMarketplaceInvalidProof(uint256 versionId, address account, uint256 weight);

    /**
     * @notice The claim carries no proof ({claimRoyaltyAgain}, or an empty proof that proves
     * nothing) and the account has no proven weight in the version (it was never paid there): its
     * first claim must prove its weight ({claimRoyalty} with its proof).
     * @param versionId The version.
     * @param account The account claimed for.
     */
    error DatasetMarketplaceWeightNotProven(uint256 versionId, address account);

    /**
     * @notice The weight given is not the one the account proved at its first paid claim.
     * @param versionId The version.
     * @param account The account claimed for.
     * @param weight The weight given.
     * @param provenWeight The account's proven weight.
     */
    error DatasetMarketplaceWeightMismatch(uint256 versionId, address account, uint256 weight, uint256 provenWeight);

    /**
     * @notice The weight proven exceeds the version's total weight: the tree is faulty.
     * @param versionId The version.
     * @param account The account claimed for.
     * @param weight The weight claimed.
     * @param totalWeight The version's total weight.
     */
    error DatasetMarketplaceWeightExceedsTotal(uint256 versionId, address account, uint256 weight, uint256 totalWeight);

    /**
     * @notice The account has already claimed all its share of the version's current pool.
     * @param versionId The version.
     * @param account The account claimed for.
     * @param claimed The account's claimed total.
     */
    error DatasetMarketplaceNothingToClaim(uint256 versionId, address account, uint256 claimed);

    /**
     * @notice Paying the claim would take the version's paid total beyond its pool.
     * @dev Unreachable with a tree whose weights add up to at most the total weight; it stops a
     * faulty tree from paying a version's contributors with other versions' tokens.
     * @param versionId The version.
     * @param amount The amount the claim would pay.
     * @param unpaid The version's pool minus its paid total.
     */
    error DatasetMarketplaceClaimExceedsPool(uint256 versionId, uint256 amount, uint256 unpaid);

    /**
     * @notice An entry of {claimMany} is invalid; nothing in the batch is paid.
     * @param index The entry's position in the batch.
     * @param reason The error {claimRoyalty} would revert with for that entry (ABI-encoded, selector first).
     */
    error DatasetMarketplaceClaimFailed(uint256 index, bytes reason);

    /**
     * @notice The account has no earnings to withdraw in this token.
     * @param account The caller.
     * @param token The token.
     */
    error DatasetMarketplaceNothingToWithdraw(address account, address token);

    /**
     * @notice Registers a version with the caller's terms; the caller must be the project's requester.
     * @dev The requester is read from the ProjectEscrow. `t.deadline` is not checked on this path.
     * Refused for an unknown project, a version other than the latest plus one (an already
     * registered one has its own error), and invalid terms (zero weight root, total weight zero or
     * not below 2**96, price not below 2**128, a token without code, shares not summing to 10 000,
     * pool share below the royalty floor).
     * @param t The terms.
     * @return versionId The version's identifier.
     */
    function registerVersion(VersionTerms calldata t) external returns (uint256 versionId);

    /**
     * @notice Registers a version on the requester's EIP-712 signature of its terms.
     * @dev Only for `OPERATOR_ROLE`. Same checks as {registerVersion}, plus the deadline and the
     * signature (ECDSA, or ERC-1271 for a contract requester) over the digest of `t` in this
     * contract's domain ("Provenant DatasetMarketplace", "1"). A signature is usable once, since a
     * version is registered once.
     * @param t The terms the requester signed.
     * @param requesterSignature The requester's signature.
     * @return versionId The version's identifier.
     */
    function registerVersionFor(
        VersionTerms calldata t,
        bytes calldata requesterSignature
    ) external returns (uint256 versionId);

    /**
     * @notice Withdraws a version from sale. Licences sold stay valid and royalties stay claimable.
     * @dev Only for the version's requester or `OPERATOR_ROLE`.
     * @param versionId The version.
     */
    function withdrawVersion(uint256 versionId) external;

    /**
     * @notice Sets the minimum pool share of later registrations.
     * @dev Only for `DEFAULT_ADMIN_ROLE`. Registered versions keep their terms.
     * @param royaltyFloorBps The floor, in basis points; at most 10 000.
     */
    function setRoyaltyFloor(uint16 royaltyFloorBps) external;

    /**
     * @notice Sets the account credited the fees of later sales.
     * @dev Only for `DEFAULT_ADMIN_ROLE`. Fees already credited stay with the previous treasury.
     * @param treasury The new treasury; must not be zero.
     */
    function setTreasury(address treasury) external;

    /**
     * @notice Buys a licence to a version for the caller, paying its price in its token.
     * @dev Naming the token and price makes a mistaken or changed purchase fail clearly. Pulls
     * `price` with one `transferFrom` (after the caller's approval); tokens that deliver less are
     * refused. Splits the price: `fee = price * feeBps / 10000`, `requesterShare = price *
     * requesterBps / 10000`, the rest (rounding included) to the pool. Refused for an unknown or
     * withdrawn version, the wrong token or price, and a caller already licensed.
     * @param versionId The version.
     * @param token The version's token.
     * @param price The version's price.
     */
    function buy(uint256 versionId, address token, uint256 price) external;

    /**
     * @notice Like {buy}, after setting the allowance with the caller's EIP-2612 permit for `price`.
     * @dev If the permit fails but the allowance is already enough (e.g. someone front-ran the
     * permit), the purchase goes ahead.
     * @param versionId The version.
     * @param token The version's token, which must implement EIP-2612.
     * @param price The version's price; also the permit's value.
     * @param permitDeadline The permit's deadline.
     * @param v The permit signature's `v`.
     * @param r The permit signature's `r`.
     * @param s The permit signature's `s`.
     */
    function buyWithPermit(
        uint256 versionId,
        address token,
        uint256 price,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /**
     * @notice Pays `account` its share of the version's pool minus what it already claimed.
     * @dev Anyone may call; the tokens always go to `account`. Works for withdrawn versions too.
     * The account's first paid claim in the version proves `weight` with `proof` and keeps it
     * ({provenWeight}). Before then, an empty proof reverts with {DatasetMarketplaceWeightNotProven}
     * (unless it is the proof: in a one-leaf tree), any other wrong proof with
     * {DatasetMarketplaceInvalidProof}. Once proven, `proof` is not looked at (it may be empty, or
     * the same proof again) and `weight` must be the proven weight
     * ({DatasetMarketplaceWeightMismatch} otherwise).
     * @param versionId The version.
     * @param account The contributor.
     * @param weight The contributor's weight in the version's weight tree.
     * @param proof The sibling hashes from the leaf up to the weight root.
     * @return amount The amount paid.
     */
    function claimRoyalty(
        uint256 versionId,
        address account,
        uint256 weight,
        bytes32[] calldata proof
    ) external returns (uint256 amount);

    /**
     * @notice Pays `account` its share of the version's pool minus what it already claimed, on
     * the weight its first paid claim proved: a later claim, with no weight and no proof.
     * @dev Anyone may call; the tokens always go to `account`. Reverts with
     * {DatasetMarketplaceWeightNotProven} before the account's first paid claim in the version,
     * otherwise exactly as {claimRoyalty} with the proven weight would.
     * @param versionId The version.
     * @param account The contributor.
     * @return amount The amount paid.
     */
    function claimRoyaltyAgain(uint256 versionId, address account) external returns (uint256 amount);

    /**
     * @notice Pays many claims in one transaction, each as {claimRoyalty} would.
     * @dev Anyone may call. Entries may mix first claims (with a proof) and later ones (proven
     * weight, empty proof). An entry with nothing to pay is skipped with a {RoyaltyClaimSkipped}
     * event (so that a contributor claiming in between does not make the batch fail); any other
     * invalid entry reverts the whole batch with {DatasetMarketplaceClaimFailed}, which names the
     * entry's index and carries the error {claimRoyalty} would give.
     * @param requests The claims.
     * @return total The total amount paid (across tokens, for information).
     */
    function claimMany(ClaimRequest[] calldata requests) external returns (uint256 total);

    /**
     * @notice Withdraws the caller's earnings (fees or requester's shares) in `token`.
     * @param token The token.
     * @return amount The amount withdrawn.
     */
    function withdrawEarnings(address token) external returns (uint256 amount);

    /**
     * @notice Returns what {claimRoyalty} would pay now for these arguments (for a later claim:
     * the proven weight and any proof, e.g. an empty one).
     * @param versionId The version.
     * @param account The contributor.
     * @param weight The contributor's weight in the version's weight tree.
     * @param proof The sibling hashes from the leaf up to the weight root.
     * @return The amount payable; zero whenever {claimRoyalty} would revert.
     */
    function claimable(
        uint256 versionId,
        address account,
        uint256 weight,
        bytes32[] calldata proof
    ) external view returns (uint256);

    /**
     * @notice Returns what an account has claimed from a version's pool in total.
     * @param versionId The version.
     * @param account The contributor.
     * @return The claimed total.
     */
    function claimed(uint256 versionId, address account) external view returns (uint256);

    /**
     * @notice Returns the weight an account proved in a version at its first paid claim, which
     * its later claims are paid on.
     * @param versionId The version.
     * @param account The contributor.
     * @return The proven weight; zero before the account's first paid claim in the version.
     */
    function provenWeight(uint256 versionId, address account) external view returns (uint256);

    /**
     * @notice Tells whether `buyer` holds a licence to the version.
     * @param buyer The account.
     * @param versionId The version.
     * @return True if `buyer` bought a licence.
     */
    function hasLicense(address buyer, uint256 versionId) external view returns (bool);

    /**
     * @notice Returns a version's terms and state; all fields are zero for an unknown id.
     * @param versionId The version.
     * @return The version.
     */
    function version(uint256 versionId) external view returns (Version memory);

    /**
     * @notice Returns a project's latest registered version number; zero before its first.
     * @param projectId The project.
     * @return The latest version number.
     */
    function latestVersionOf(uint256 projectId) external view returns (uint32);

    /**
     * @notice Returns an account's earnings in a token not yet withdrawn.
     * @param account The account (the treasury or a requester).
     * @param token The token.
     * @return The amount withdrawable.
     */
    function earnings(address account, address token) external view returns (uint256);

    /**
     * @notice Returns the EIP-712 digest of `t` that {registerVersionFor} expects the requester to sign.
     * @param t The terms.
     * @return The digest.
     */
    function hashVersionTerms(VersionTerms calldata t) external view returns (bytes32);

    /**
     * @notice Returns the version id of a project's version: `(projectId << 32) | version`.
     * @dev Reverts with {DatasetMarketplaceProjectIdTooLarge} unless `projectId < 2**224`.
     * @param projectId The project.
     * @param version The version number.
     * @return The version id.
     */
    function versionIdOf(uint256 projectId, uint32 version) external pure returns (uint256);

    /**
     * @notice Returns the EIP-712 type hash of `VersionTerms`.
     * @return The type hash.
     */
    // solhint-disable-next-line func-name-mixedcase
    function VERSION_TERMS_TYPEHASH() external view returns (bytes32);

    /**
     * @notice Returns the EIP-712 domain separator for the current chain.
     * @return The domain separator.
     */
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32);

    /**
     * @notice Returns the ProjectEscrow that tells each project's requester.
     * @return The escrow's address.
     */
    function escrow() external view returns (address);

    /**
     * @notice Returns the account credited the fees of sales.
     * @return The treasury.
     */
    function treasury() external view returns (address);

    /**
     * @notice Returns the minimum pool share of registrations, in basis points.
     * @return The floor.
     */
    function royaltyFloorBps() external view returns (uint16);
}
