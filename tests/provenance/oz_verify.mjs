// Known-answer helper for tests/provenance/test_merkle.py: runs the real @openzeppelin/merkle-tree.
//
//   node tests/provenance/oz_verify.mjs build <input.json>
//     input: {"leafEncoding": [...], "values": [[...], ...], "options"?: {"sortLeaves": bool}}
//     prints: {"root", "dump", "dumpJson" (JSON.stringify of the dump), "proofs" (per value index)}
//   node tests/provenance/oz_verify.mjs verify <dump.json> <proofs.json>
//     loads a dump made by backend/provenance/merkle.py with StandardMerkleTree.load (which
//     checks every node and value), then verifies each given proof (one per value index) both
//     against the loaded tree and with the static StandardMerkleTree.verify.
//     prints: {"root", "checked", "failures": [value indices whose proof was refused],
//              "mismatches": [value indices whose proof differs from getProof]}
//
// node_modules is resolved from the repository root (this file lives two levels below it).
import { readFileSync } from "node:fs";
import oz from "@openzeppelin/merkle-tree";

const { StandardMerkleTree } = oz;
const readJson = (path) => JSON.parse(readFileSync(path, "utf8"));
const [command, ...args] = process.argv.slice(2);

if (command === "build") {
  const { leafEncoding, values, options } = readJson(args[0]);
  const tree = StandardMerkleTree.of(values, leafEncoding, options ?? {});
  const dump = tree.dump();
  const proofs = values.map((_, i) => tree.getProof(i));
  process.stdout.write(JSON.stringify({ root: tree.root, dump, dumpJson: JSON.stringify(dump), proofs }));
} else if (command === "verify") {
  const dump = readJson(args[0]);
  const proofs = readJson(args[1]);
  const tree = StandardMerkleTree.load(dump);
  const failures = [];
  const mismatches = [];
  for (const [i, value] of tree.entries()) {
    const proof = proofs[i];
    const ok = tree.verify(i, proof) && StandardMerkleTree.verify(tree.root, dump.leafEncoding, value, proof);
    if (!ok) failures.push(i);
    if (JSON.stringify(tree.getProof(i)) !== JSON.stringify(proof)) mismatches.push(i);
  }
  process.stdout.write(JSON.stringify({ root: tree.root, checked: tree.length, failures, mismatches }));
} else {
  process.stderr.write("usage: oz_verify.mjs build <input.json> | verify <dump.json> <proofs.json>\n");
  process.exit(2);
}
