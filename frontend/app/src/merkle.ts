// OpenZeppelin's StandardMerkleTree, checked in the browser with viem (the buyer's preview and
// the contributor's on-chain check share it): a leaf is keccak256 of keccak256 of its
// ABI-encoded values, and a proof hashes sorted pairs up to the root.
import { concat, encodeAbiParameters, keccak256, type Hex } from "viem";

export function leafHash(types: readonly string[], values: readonly unknown[]): Hex {
  const encoded = encodeAbiParameters(
    types.map((type) => ({ type })),
    values as unknown[],
  );
  return keccak256(keccak256(encoded));
}

/** The root the proof leads the leaf to (pairs hashed sorted, as OpenZeppelin's trees do). */
export function rootOf(leaf: Hex, proof: readonly string[]): Hex {
  return proof.reduce<Hex>((node, sibling) => {
    const s = sibling.toLowerCase() as Hex;
    return keccak256(node < s ? concat([node, s]) : concat([s, node]));
  }, leaf.toLowerCase() as Hex);
}

export function proves(root: string, leaf: Hex, proof: readonly string[]): boolean {
  return rootOf(leaf, proof) === root.toLowerCase();
}
