// Node side of bench/anchoring.py: times @openzeppelin/merkle-tree on the same leaves.
//
//   node bench/oz_merkle_tree.mjs <input.json>
//     input: {"leafEncoding": [...], "values": [[...], ...]} (values in dump form)
//     prints: {"leaves", "root", "buildMs" (StandardMerkleTree.of), "proofsMs" (getProof for
//              every value, as the package offers no bulk call), "totalMs", "node"}
//
// Reading and parsing the input file is not timed; neither is node's start-up.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import oz from "@openzeppelin/merkle-tree";

const { StandardMerkleTree } = oz;
const { leafEncoding, values } = JSON.parse(readFileSync(process.argv[2], "utf8"));

const t0 = performance.now();
const tree = StandardMerkleTree.of(values, leafEncoding);
const t1 = performance.now();
let proofElements = 0;
for (let i = 0; i < values.length; i++) {
  proofElements += tree.getProof(i).length;
}
const t2 = performance.now();

process.stdout.write(
  JSON.stringify({
    leaves: values.length,
    root: tree.root,
    proofElements,
    buildMs: t1 - t0,
    proofsMs: t2 - t1,
    totalMs: t2 - t0,
    node: process.version,
  }),
);
