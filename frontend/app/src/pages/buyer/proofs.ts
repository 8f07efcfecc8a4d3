// OpenZeppelin's StandardMerkleTree, checked here with viem: a leaf is keccak256 of keccak256
// of its ABI-encoded values, and a proof hashes sorted pairs up to the root.
import { concat, encodeAbiParameters, keccak256, type Hex } from "viem";

export function leafHash(types: string[], values: string[]): Hex {
  const encoded = encodeAbiParameters(
    types.map((type) => ({ type })),
    values,
  );
  return keccak256(keccak256(encoded));
}

export function proves(root: string, leaf: Hex, proof: string[]): boolean {
  let node = leaf;
  for (const sibling of proof) {
    const [a, b] = BigInt(node) < BigInt(sibling) ? [node, sibling as Hex] : [sibling as Hex, node];
    node = keccak256(concat([a, b]));
  }
  return node.toLowerCase() === root.toLowerCase();
}
