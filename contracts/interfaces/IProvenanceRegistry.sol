// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/**
 * @title IProvenanceRegistry
 * @notice Anchors the Merkle roots of batches of contributions, so anyone can prove from the
 * chain that a contribution was part of a batch.
 * @dev Trees are OpenZeppelin `StandardMerkleTree`s (format "standard-v1"): a leaf is
 * `keccak256(bytes.concat(keccak256(abi.encode(...fields))))` and inner nodes hash their two
 * children in sorted order, as `MerkleProof` expects. Only the root is stored; the leaf count
 * and the hash of the batch's tree dump are in the {BatchAnchored} event.
 */
interface IProvenanceRegistry {
    /**
     * @notice Emitted when a batch's Merkle root is anchored.
     * @param batchId The batch's identifier (assigned off chain; each is anchored once).
     * @param root The Merkle root of the batch's contributions.
     * @param leafCount The number of contributions (leaves) in the batch.
     * @param treeHash SHA-256 of the batch's "standard-v1" JSON tree dump, which lets anyone check
     * a published dump against the chain.
     */
    event BatchAnchored(uint256 indexed batchId, bytes32 indexed root, uint32 leafCount, bytes32 treeHash);

    /**
     * @notice The root given is zero, which no tree has and which marks an unanchored batch.
     * @param batchId The batch that was being anchored.
     */
    error ProvenanceRegistryEmptyRoot(uint256 batchId);

    /**
     * @notice The leaf count given is zero; a batch holds at least one contribution.
     * @param batchId The batch that was being anchored.
     */
    error ProvenanceRegistryEmptyBatch(uint256 batchId);

    /**
     * @notice The batch already has a root; anchors are final.
     * @dev Re-sending an anchor whose first transaction was mined (e.g. after a crash) fails
     * with this error and changes nothing; `root` tells the sender which root is on chain.
     * @param batchId The batch that was being anchored.
     * @param root The root already stored for that batch.
     */
    error ProvenanceRegistryBatchAlreadyAnchored(uint256 batchId, bytes32 root);

    /**
     * @notice Anchors the Merkle root of a batch of contributions.
     * @dev Only for `ANCHORER_ROLE`. Each batch id can be anchored once.
     * @param batchId The batch's identifier.
     * @param root The batch's Merkle root; must not be zero.
     * @param leafCount The number of leaves in the batch; must not be zero.
     * @param treeHash SHA-256 of the batch's "standard-v1" JSON tree dump (only emitted).
     */
    function anchor(uint256 batchId, bytes32 root, uint32 leafCount, bytes32 treeHash) external;

    /**
     * @notice The root anchored for a batch.
     * @param batchId The batch's identifier.
     * @return The batch's Merkle root, or zero if the batch has not been anchored.
     */
    function rootOf(uint256 batchId) external view returns (bytes32);

    /**
     * @notice Whether `leaf` is in the tree anchored for `batchId`.
     * @param batchId The batch's identifier.
     * @param leaf The leaf hash (the double keccak of the ABI-encoded contribution).
     * @param proof The sibling hashes from the leaf up to the root.
     * @return True if the proof leads from `leaf` to the batch's anchored root; false otherwise,
     * and always false for a batch that has not been anchored.
     */
    function verify(uint256 batchId, bytes32 leaf, bytes32[] calldata proof) external view returns (bool);
}
