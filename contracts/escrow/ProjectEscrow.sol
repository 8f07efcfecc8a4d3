// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IProjectEscrow} from "../interfaces/IProjectEscrow.sol";

/**
 * @title ProjectEscrow
 * @notice Holds projects' reward budgets and pays contributors against cumulative Merkle roots.
 * @dev Each root costs the operator one transaction whatever the number of contributors, and
 * each claim costs the same whatever the number of epochs: only the latest root is kept, and an
 * account's claimed total is one slot. Storage is packed for the claim: it reads three slots of
 * the project (token, root, committed and paid together) and the account's claimed slot, and
 * writes the last two. Amounts are kept as `uint128` (deposits beyond that are refused), which
 * is safe since `paid <= committed <= deposited`. Transfers go through {SafeERC20}, so tokens
 * that return no bool work; tokens that deliver less than the amount transferred are refused.
 */
contract ProjectEscrow is IProjectEscrow, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Role allowed to register projects, post roots and relay claims.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    /// @dev Storage layout of a project; the first three slots are those a claim reads.
    struct ProjectState {
        // Slot 0: read by claims, deposits and roots; zero token = unregistered project.
        IERC20 token;
        uint64 epoch;
        bool closed;
        // Slot 1: read by claims.
        bytes32 root;
        // Slot 2: read and written by claims (paid) and roots (committed).
        uint128 committed;
        uint128 paid;
        // Slot 3: read by close and withdraw only.
        address requester;
        // Slot 4: read by deposits, roots and withdraw.
        uint128 deposited;
        uint128 withdrawn;
    }

    mapping(uint256 projectId => ProjectState) private _projects;
    mapping(uint256 projectId => mapping(address account => uint256 cumulativeAmount)) private _claimed;

    /**
     * @notice Deploys the escrow.
     * @param admin Receives `DEFAULT_ADMIN_ROLE` (grants and revokes operators).
     * @param operator Receives `OPERATOR_ROLE`.
     */
    constructor(address admin, address operator) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
    }

    /// @inheritdoc IProjectEscrow
    function registerProject(uint256 projectId, address requester, IERC20 token) external onlyRole(OPERATOR_ROLE) {
        ProjectState storage p = _projects[projectId];
        if (address(p.token) != address(0)) {
            revert ProjectEscrowProjectAlreadyRegistered(projectId, p.requester);
        }
        if (requester == address(0)) {
            revert ProjectEscrowZeroRequester(projectId);
        }
        if (address(token).code.length == 0) {
            revert ProjectEscrowTokenNotContract(address(token));
        }

        p.token = token;
        p.requester = requester;
        emit ProjectRegistered(projectId, requester, token);
    }

    /// @inheritdoc IProjectEscrow
    function deposit(uint256 projectId, IERC20 token, uint256 amount) external nonReentrant {
        ProjectState storage p = _checkDeposit(projectId, token, amount);
        _pull(projectId, p, token, amount);
    }

    /// @inheritdoc IProjectEscrow
    function depositWithPermit(
        uint256 projectId,
        IERC20 token,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant {
        ProjectState storage p = _checkDeposit(projectId, token, amount);
        // A permit seen in the mempool can be submitted by anyone first, which makes this call's
        // permit revert; the allowance it set is then there, so go ahead (OpenZeppelin's advice).
        try IERC20Permit(address(token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {
            uint256 allowance = token.allowance(msg.sender, address(this));
            if (allowance < amount) {
                revert ProjectEscrowPermitFailed(token, msg.sender, allowance, amount);
            }
        }
        _pull(projectId, p, token, amount);
    }

    /// @inheritdoc IProjectEscrow
    function postRoot(
        uint256 projectId,
        uint64 epoch,
        bytes32 root,
        uint256 totalCumulative,
        bytes32 treeHash
    ) external onlyRole(OPERATOR_ROLE) {
        ProjectState storage p = _registered(projectId);
        if (p.closed) {
            revert ProjectEscrowProjectClosed(projectId);
        }
        uint64 expected = p.epoch + 1;
        if (epoch != expected) {
            revert ProjectEscrowNonConsecutiveEpoch(projectId, expected, epoch);
        }
        if (root == bytes32(0)) {
            revert ProjectEscrowEmptyRoot(projectId);
        }
        uint256 previous = p.committed;
        if (totalCumulative < previous) {
            revert ProjectEscrowCumulativeDecreased(projectId, previous, totalCumulative);
        }
        // Withdrawals happen only once closed, and closed projects take no roots, so this is
        // `deposited` in practice; subtracting `withdrawn` keeps the bound right regardless.
        uint256 budget = uint256(p.deposited) - p.withdrawn;
        if (totalCumulative > budget) {
            revert ProjectEscrowRootExceedsBudget(projectId, totalCumulative, budget);
        }

        p.epoch = epoch;
        p.root = root;
        // Fits: totalCumulative <= deposited <= type(uint128).max.
        p.committed = uint128(totalCumulative);
        emit RootPosted(projectId, epoch, root, totalCumulative, treeHash);
    }

    /// @inheritdoc IProjectEscrow
    function claim(
        uint256 projectId,
        address account,
        uint256 cumulativeAmount,
        bytes32[] calldata proof
    ) external nonReentrant returns (uint256 amount) {
        if (msg.sender != account && !hasRole(OPERATOR_ROLE, msg.sender)) {
            revert ProjectEscrowUnauthorizedClaimer(projectId, account, msg.sender);
        }
        ProjectState storage p = _projects[projectId];
        bytes32 root = p.root;
        if (root == bytes32(0)) {
            revert ProjectEscrowNoRoot(projectId);
        }
        if (!MerkleProof.verifyCalldata(proof, root, _leaf(account, cumulativeAmount))) {
            revert ProjectEscrowInvalidProof(projectId, account, cumulativeAmount);
        }
        uint256 already = _claimed[projectId][account];
        if (cumulativeAmount <= already) {
            revert ProjectEscrowNothingToClaim(projectId, account, already);
        }
        amount = cumulativeAmount - already;
        uint128 paid = p.paid;
        uint256 owed = p.committed - paid;
        if (amount > owed) {
            revert ProjectEscrowClaimExceedsCommitted(projectId, amount, owed);
        }

        _claimed[projectId][account] = cumulativeAmount;
        // Fits: paid + amount <= committed <= type(uint128).max.
        p.paid = paid + uint128(amount);
        p.token.safeTransfer(account, amount);
        emit Claimed(projectId, account, amount, cumulativeAmount, msg.sender);
    }

    /// @inheritdoc IProjectEscrow
    function closeProject(uint256 projectId) external {
        ProjectState storage p = _requesterOf(projectId);
        if (p.closed) {
            revert ProjectEscrowProjectClosed(projectId);
        }

        p.closed = true;
        emit ProjectClosed(projectId, p.epoch, p.committed);
    }

    /// @inheritdoc IProjectEscrow
    function withdrawUncommitted(uint256 projectId) external nonReentrant returns (uint256 amount) {
        ProjectState storage p = _requesterOf(projectId);
        if (!p.closed) {
            revert ProjectEscrowProjectNotClosed(projectId);
        }
        uint128 withdrawn = p.withdrawn;
        amount = uint256(p.deposited) - p.committed - withdrawn;
        if (amount == 0) {
            revert ProjectEscrowNothingToWithdraw(projectId);
        }

        // Fits: withdrawn + amount <= deposited <= type(uint128).max.
        p.withdrawn = withdrawn + uint128(amount);
        p.token.safeTransfer(msg.sender, amount);
        emit Withdrawn(projectId, msg.sender, amount);
    }

    /// @inheritdoc IProjectEscrow
    function project(uint256 projectId) external view returns (Project memory) {
        ProjectState storage p = _projects[projectId];
        return
            Project({
                requester: p.requester,
                token: p.token,
                deposited: p.deposited,
                committed: p.committed,
                paid: p.paid,
                withdrawn: p.withdrawn,
                root: p.root,
                epoch: p.epoch,
                closed: p.closed
            });
    }

    /// @inheritdoc IProjectEscrow
    function claimed(uint256 projectId, address account) external view returns (uint256) {
        return _claimed[projectId][account];
    }

    /// @inheritdoc IProjectEscrow
    function claimable(
        uint256 projectId,
        address account,
        uint256 cumulativeAmount,
        bytes32[] calldata proof
    ) external view returns (uint256) {
        ProjectState storage p = _projects[projectId];
        bytes32 root = p.root;
        // A project without a root has none to prove against; without this check a proof hashing
        // to zero would pass.
        if (root == bytes32(0) || !MerkleProof.verifyCalldata(proof, root, _leaf(account, cumulativeAmount))) {
            return 0;
        }
        uint256 already = _claimed[projectId][account];
        if (cumulativeAmount <= already) {
            return 0;
        }
        uint256 amount = cumulativeAmount - already;
        return amount > p.committed - p.paid ? 0 : amount;
    }

    /// @dev Checks a deposit's arguments; returns the project.
    function _checkDeposit(
        uint256 projectId,
        IERC20 token,
        uint256 amount
    ) private view returns (ProjectState storage p) {
        p = _registered(projectId);
        if (p.closed) {
            revert ProjectEscrowProjectClosed(projectId);
        }
        if (token != p.token) {
            revert ProjectEscrowWrongToken(projectId, p.token, token);
        }
        if (amount == 0) {
            revert ProjectEscrowZeroAmount(projectId);
        }
        if (amount > type(uint128).max - p.deposited) {
            revert ProjectEscrowDepositOverflow(projectId, p.deposited, amount);
        }
    }

    /// @dev Pulls `amount` of `token` from the caller, refusing any shortfall, and credits the project.
    function _pull(uint256 projectId, ProjectState storage p, IERC20 token, uint256 amount) private {
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 afterwards = token.balanceOf(address(this));
        if (afterwards < before || afterwards - before != amount) {
            revert ProjectEscrowFeeOnTransfer(token, amount, afterwards < before ? 0 : afterwards - before);
        }

        // Fits: checked against type(uint128).max in _checkDeposit.
        uint128 total = p.deposited + uint128(amount);
        p.deposited = total;
        emit Deposited(projectId, msg.sender, amount, total);
    }

    /// @dev Returns the project, reverting unless it is registered.
    function _registered(uint256 projectId) private view returns (ProjectState storage p) {
        p = _projects[projectId];
        if (address(p.token) == address(0)) {
            revert ProjectEscrowUnknownProject(projectId);
        }
    }

    /// @dev Returns the project, reverting unless it is registered and the caller is its requester.
    function _requesterOf(uint256 projectId) private view returns (ProjectState storage p) {
        p = _registered(projectId);
        if (msg.sender != p.requester) {
            revert ProjectEscrowNotRequester(projectId, msg.sender);
        }
    }

    /**
     * @dev The "standard-v1" leaf of `(account, cumulativeAmount)`:
     * `keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))))`, computed in the
     * scratch space, which saves about 200 gas per claim over the Solidity expression (no memory
     * allocation or copies).
     */
    function _leaf(address account, uint256 cumulativeAmount) private pure returns (bytes32 leaf) {
        assembly ("memory-safe") {
            mstore(0x00, account)
            mstore(0x20, cumulativeAmount)
            mstore(0x00, keccak256(0x00, 0x40))
            leaf := keccak256(0x00, 0x20)
        }
    }
}
