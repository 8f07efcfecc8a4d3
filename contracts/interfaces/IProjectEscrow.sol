// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/**
 * @title IProjectEscrow
 * @notice Holds each project's reward budget and pays contributors what they earned, as published
 * epoch by epoch in a cumulative Merkle root.
 * @dev One escrow serves many projects; each has its own ERC-20 and its own accounts. A root is an
 * OpenZeppelin `StandardMerkleTree` (format "standard-v1") of `(address contributor, uint256
 * cumulativeAmount)` leaves: a leaf is `keccak256(bytes.concat(keccak256(abi.encode(contributor,
 * cumulativeAmount))))`. Amounts are cumulative since the project began, so each root supersedes
 * the previous one and a contributor claims `cumulativeAmount - claimed`. For each project the
 * escrow keeps `paid <= committed <= deposited - withdrawn`, where `committed` is the total of the
 * latest root's amounts: it never pays what was not earned, nor more than it holds.
 */
interface IProjectEscrow {
    /**
     * @notice A project's state, as returned by {project}.
     * @param requester The account that closes the project and takes back what is not owed.
     * @param token The ERC-20 the project's rewards are paid in.
     * @param deposited Total amount deposited.
     * @param committed Total of the cumulative amounts in the latest root: what contributors have earned.
     * @param paid Total amount claimed by contributors; `committed - paid` is owed and stays claimable.
     * @param withdrawn Total amount the requester withdrew after closing.
     * @param root The latest Merkle root; zero before the first epoch.
     * @param epoch The latest epoch posted; zero before the first.
     * @param closed Whether the requester closed the project.
     */
    struct Project {
        address requester;
        IERC20 token;
        uint256 deposited;
        uint256 committed;
        uint256 paid;
        uint256 withdrawn;
        bytes32 root;
        uint64 epoch;
        bool closed;
    }

    /**
     * @notice Emitted when a project is registered.
     * @param projectId The project's identifier (assigned off chain; each is registered once).
     * @param requester The project's requester.
     * @param token The project's reward token.
     */
    event ProjectRegistered(uint256 indexed projectId, address indexed requester, IERC20 indexed token);

    /**
     * @notice Emitted when tokens are deposited into a project's budget.
     * @param projectId The project.
     * @param from The account the tokens came from.
     * @param amount The amount deposited (received in full: fee-on-transfer tokens are refused).
     * @param totalDeposited The project's total deposited after this deposit.
     */
    event Deposited(uint256 indexed projectId, address indexed from, uint256 amount, uint256 totalDeposited);

    /**
     * @notice Emitted when the root of an epoch is posted.
     * @param projectId The project.
     * @param epoch The epoch, one more than the previous.
     * @param root The Merkle root of the cumulative amounts earned up to this epoch.
     * @param totalCumulative The sum of the tree's cumulative amounts, now the project's committed total.
     * @param treeHash SHA-256 of the epoch's "standard-v1" JSON tree dump (only emitted).
     */
    event RootPosted(
        uint256 indexed projectId,
        uint64 indexed epoch,
        bytes32 root,
        uint256 totalCumulative,
        bytes32 treeHash
    );

    /**
     * @notice Emitted when a contributor's rewards are paid.
     * @param projectId The project.
     * @param account The contributor, who received the tokens.
     * @param amount The amount paid by this claim.
     * @param cumulativeAmount The contributor's cumulative amount in the root; now their claimed total.
     * @param by The caller: the contributor, or an operator relaying the claim.
     */
    event Claimed(
        uint256 indexed projectId,
        address indexed account,
        uint256 amount,
        uint256 cumulativeAmount,
        address indexed by
    );

    /**
     * @notice Emitted when the requester closes a project.
     * @param projectId The project.
     * @param epoch The last epoch posted, which stays final.
     * @param committed The committed total, which stays claimable.
     */
    event ProjectClosed(uint256 indexed projectId, uint64 epoch, uint256 committed);

    /**
     * @notice Emitted when the requester withdraws the part of a closed project's budget that is not owed.
     * @param projectId The project.
     * @param requester The requester, who received the tokens.
     * @param amount The amount withdrawn.
     */
    event Withdrawn(uint256 indexed projectId, address indexed requester, uint256 amount);

    /**
     * @notice The project id is already registered; registrations are final.
     * @param projectId The project.
     * @param requester The requester already registered for it.
     */
    error ProjectEscrowProjectAlreadyRegistered(uint256 projectId, address requester);

    /**
     * @notice The requester given is the zero address.
     * @param projectId The project that was being registered.
     */
    error ProjectEscrowZeroRequester(uint256 projectId);

    /**
     * @notice The token given has no code, so it cannot be an ERC-20.
     * @param token The address given.
     */
    error ProjectEscrowTokenNotContract(address token);

    /**
     * @notice No project is registered with this id.
     * @param projectId The project id given.
     */
    error ProjectEscrowUnknownProject(uint256 projectId);

    /**
     * @notice The project is closed: it takes no more deposits or roots.
     * @param projectId The project.
     */
    error ProjectEscrowProjectClosed(uint256 projectId);

    /**
     * @notice The withdrawal needs the project to be closed first.
     * @param projectId The project.
     */
    error ProjectEscrowProjectNotClosed(uint256 projectId);

    /**
     * @notice The caller is not the project's requester.
     * @param projectId The project.
     * @param sender The caller.
     */
    error ProjectEscrowNotRequester(uint256 projectId, address sender);

    /**
     * @notice The token deposited is not the project's reward token.
     * @param projectId The project.
     * @param expected The project's token.
     * @param given The token given.
     */
    error ProjectEscrowWrongToken(uint256 projectId, IERC20 expected, IERC20 given);

    /**
     * @notice The amount deposited is zero.
     * @param projectId The project.
     */
    error ProjectEscrowZeroAmount(uint256 projectId);

    /**
     * @notice The deposit would take the project's total deposited beyond `type(uint128).max`.
     * @param projectId The project.
     * @param deposited The project's total deposited so far.
     * @param amount The amount given.
     */
    error ProjectEscrowDepositOverflow(uint256 projectId, uint256 deposited, uint256 amount);

    /**
     * @notice The escrow's balance grew by another amount than the one transferred: the token takes
     * a fee on transfer (or otherwise changes balances), which the escrow refuses.
     * @param token The token.
     * @param expected The amount transferred.
     * @param received The amount the escrow's balance grew by.
     */
    error ProjectEscrowFeeOnTransfer(IERC20 token, uint256 expected, uint256 received);

    /**
     * @notice The permit failed and the allowance it was to set is not there either.
     * @param token The token.
     * @param owner The depositor, who signed the permit.
     * @param allowance The escrow's current allowance from `owner`.
     * @param amount The amount to deposit.
     */
    error ProjectEscrowPermitFailed(IERC20 token, address owner, uint256 allowance, uint256 amount);

    /**
     * @notice The epoch is not the one after the project's latest.
     * @dev Re-sending a root whose first transaction was mined (e.g. after a crash) fails with this
     * error and changes nothing; `expected` then tells the sender that its epoch is on chain.
     * @param projectId The project.
     * @param expected The only epoch that can be posted next (the latest plus one).
     * @param given The epoch given.
     */
    error ProjectEscrowNonConsecutiveEpoch(uint256 projectId, uint64 expected, uint64 given);

    /**
     * @notice The root given is zero, which no tree has and which marks a project without roots.
     * @param projectId The project.
     */
    error ProjectEscrowEmptyRoot(uint256 projectId);

    /**
     * @notice The root's total is below the previous root's: cumulative amounts never decrease.
     * @param projectId The project.
     * @param previous The committed total of the previous root.
     * @param totalCumulative The total given.
     */
    error ProjectEscrowCumulativeDecreased(uint256 projectId, uint256 previous, uint256 totalCumulative);

    /**
     * @notice The root's total exceeds the project's budget (deposited minus withdrawn).
     * @param projectId The project.
     * @param totalCumulative The total given.
     * @param budget The project's budget.
     */
    error ProjectEscrowRootExceedsBudget(uint256 projectId, uint256 totalCumulative, uint256 budget);

    /**
     * @notice The caller is neither the account claimed for nor an operator.
     * @param projectId The project.
     * @param account The account claimed for.
     * @param sender The caller.
     */
    error ProjectEscrowUnauthorizedClaimer(uint256 projectId, address account, address sender);

    /**
     * @notice The project has no root yet (or is not registered), so nothing can be claimed.
     * @param projectId The project.
     */
    error ProjectEscrowNoRoot(uint256 projectId);

    /**
     * @notice The proof does not lead from `(account, cumulativeAmount)` to the project's latest root.
     * @dev Also the error for a proof against a superseded (stale) root.
     * @param projectId The project.
     * @param account The account claimed for.
     * @param cumulativeAmount The cumulative amount claimed.
     */
    error ProjectEscrowInvalidProof(uint256 projectId, address account, uint256 cumulativeAmount);

    /**
     * @notice The account has already claimed at least this cumulative amount.
     * @param projectId The project.
     * @param account The account claimed for.
     * @param claimed The account's claimed total.
     */
    error ProjectEscrowNothingToClaim(uint256 projectId, address account, uint256 claimed);

    /**
     * @notice Paying the claim would take the project's paid total beyond its committed total.
     * @dev Unreachable with a tree whose amounts add up to the total posted; it stops a faulty tree
     * from paying one project's contributors with another project's tokens.
     * @param projectId The project.
     * @param amount The amount the claim would pay.
     * @param owed The project's committed total minus its paid total.
     */
    error ProjectEscrowClaimExceedsCommitted(uint256 projectId, uint256 amount, uint256 owed);

    /**
     * @notice Everything deposited is committed to contributors or already withdrawn.
     * @param projectId The project.
     */
    error ProjectEscrowNothingToWithdraw(uint256 projectId);

    /**
     * @notice Registers a project with its requester and reward token.
     * @dev Only for `OPERATOR_ROLE`. Each project id can be registered once.
     * @param projectId The project's identifier.
     * @param requester The project's requester; must not be zero.
     * @param token The reward token; must be a contract. Fee-on-transfer tokens are refused at deposit.
     */
    function registerProject(uint256 projectId, address requester, IERC20 token) external;

    /**
     * @notice Deposits `amount` of the project's token from the caller into the project's budget.
     * @dev Anyone may deposit (normally the requester), after approving the escrow. Refused for an
     * unknown or closed project, another token than the project's, a zero amount, a total beyond
     * `type(uint128).max`, and a transfer that does not deliver exactly `amount`.
     * @param projectId The project.
     * @param token The project's token; naming it makes a deposit of the wrong token fail clearly.
     * @param amount The amount, in the token's smallest unit.
     */
    function deposit(uint256 projectId, IERC20 token, uint256 amount) external;

    /**
     * @notice Like {deposit}, after setting the allowance with the caller's EIP-2612 permit.
     * @dev If the permit fails but the allowance is already enough (e.g. someone front-ran the
     * permit), the deposit goes ahead.
     * @param projectId The project.
     * @param token The project's token, which must implement EIP-2612.
     * @param amount The amount; also the permit's value.
     * @param deadline The permit's deadline.
     * @param v The permit signature's `v`.
     * @param r The permit signature's `r`.
     * @param s The permit signature's `s`.
     */
    function depositWithPermit(
        uint256 projectId,
        IERC20 token,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /**
     * @notice Posts the Merkle root of the cumulative amounts earned up to `epoch`.
     * @dev Only for `OPERATOR_ROLE`, and not after the project is closed. Epochs are consecutive
     * from 1, so an epoch has one root at most. The new root supersedes the previous one.
     * @param projectId The project.
     * @param epoch The previous epoch plus one.
     * @param root The tree's root; must not be zero.
     * @param totalCumulative The sum of the tree's cumulative amounts: at least the previous total,
     * at most the budget (deposited minus withdrawn).
     * @param treeHash SHA-256 of the epoch's "standard-v1" JSON tree dump (only emitted).
     */
    function postRoot(
        uint256 projectId,
        uint64 epoch,
        bytes32 root,
        uint256 totalCumulative,
        bytes32 treeHash
    ) external;

    /**
     * @notice Pays `account` its cumulative amount in the latest root, minus what it already claimed.
     * @dev Callable by `account` or, to spare the contributor gas, by an operator; the tokens always
     * go to `account`. Claims keep working after the project is closed.
     * @param projectId The project.
     * @param account The contributor.
     * @param cumulativeAmount The contributor's cumulative amount in the latest root.
     * @param proof The sibling hashes from the leaf up to the root.
     * @return amount The amount paid.
     */
    function claim(
        uint256 projectId,
        address account,
        uint256 cumulativeAmount,
        bytes32[] calldata proof
    ) external returns (uint256 amount);

    /**
     * @notice Closes the project: no more deposits or roots; claims of what is owed keep working.
     * @dev Only for the project's requester.
     * @param projectId The project.
     */
    function closeProject(uint256 projectId) external;

    /**
     * @notice Sends the requester what a closed project holds beyond what contributors are owed:
     * deposited minus committed minus already withdrawn.
     * @dev Only for the project's requester, after {closeProject}.
     * @param projectId The project.
     * @return amount The amount withdrawn.
     */
    function withdrawUncommitted(uint256 projectId) external returns (uint256 amount);

    /**
     * @notice Returns a project's state; all fields are zero for an unknown id.
     * @param projectId The project.
     * @return The project's state.
     */
    function project(uint256 projectId) external view returns (Project memory);

    /**
     * @notice Returns the cumulative amount an account has claimed from a project.
     * @param projectId The project.
     * @param account The contributor.
     * @return The claimed total.
     */
    function claimed(uint256 projectId, address account) external view returns (uint256);

    /**
     * @notice Returns what {claim} would pay now for these arguments, whoever calls it.
     * @param projectId The project.
     * @param account The contributor.
     * @param cumulativeAmount The contributor's cumulative amount in the latest root.
     * @param proof The sibling hashes from the leaf up to the root.
     * @return The amount payable; zero if the proof is invalid or stale, nothing is left to claim,
     * or the claim would exceed the project's committed total.
     */
    function claimable(
        uint256 projectId,
        address account,
        uint256 cumulativeAmount,
        bytes32[] calldata proof
    ) external view returns (uint256);
}
