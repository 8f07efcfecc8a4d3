// A second, independent verifier of a dataset version: the manifest's bytes and a JSON-RPC
// endpoint of the chain, nothing else. It runs in a browser as well as under node (no node
// imports), so an auditor's page can check a version without trusting our Python.
//
//   const report = await verifyManifest(bytes, httpRpc(url), { maxBlocks: 10_000 });
//
// The checks are those of backend/audit (docs/audit.md), with the same ids, the same meaning
// and messages naming the same facts, except method.rule, labels.recompute, manifest.schema
// and the exports. In place of the schema, manifest.fields checks the types of the members
// read here: a document the schema accepts always passes it. The report has the shape of
// backend/audit/report.py's Report.as_json().

import { AbiCoder, Interface, concat, getAddress, getBytes, id, keccak256, toUtf8Bytes } from "ethers";
import oz from "@openzeppelin/merkle-tree";
import canonicalize from "canonicalize";

// The package is CommonJS: its default import is module.exports, in node and in bundlers.
const { StandardMerkleTree } = oz;

const LEAF_ENCODING = ["address", "uint256", "bytes32", "bytes32", "bytes32", "uint64"];
const ITEM_LEAF_ENCODING = ["bytes32", "bytes32"];
const WEIGHT_LEAF_ENCODING = ["address", "uint256"];
const CONTRACTS = ["ConsentRegistry", "DatasetMarketplace", "ProjectEscrow", "ProvenanceRegistry"];
// backend/consent/terms.py SCOPES: a use's name and its bit in a consent's scopes.
const SCOPE_BITS = { research: 1, commercial_ai_training: 2 };
const UINT64_LIMIT = 1n << 64n;
const UINT256_LIMIT = 1n << 256n;
const PROGRESS_EVERY = 10_000;

// The view functions read, written out (an auditor needs no build of the contracts).
const VERSION_FIELDS = [
  "uint256 projectId",
  "uint32 version",
  "address requester",
  "address token",
  "uint256 price",
  "bytes32 manifestHash",
  "bytes32 itemRoot",
  "bytes32 weightRoot",
  "uint256 totalWeight",
  "bytes32 termsHash",
  "uint16 feeBps",
  "uint16 requesterBps",
  "uint16 poolBps",
  "bool withdrawn",
  "uint64 registeredAt",
  "uint256 pool",
  "uint256 paid",
];
const CONSENT_FIELDS = [
  "address contributor",
  "uint32 termsVersion",
  "uint64 scopes",
  "uint16 royaltyBps",
  "uint64 recordedAt",
  "uint64 revokedAt",
  "uint64 validUntil",
  "bytes32 termsHash",
];
const MARKETPLACE = new Interface([
  `function version(uint256) view returns (tuple(${VERSION_FIELDS.join(", ")}))`,
  "function escrow() view returns (address)",
]);
const CONSENT = new Interface([
  `function consentRecord(bytes32) view returns (tuple(${CONSENT_FIELDS.join(", ")}))`,
]);
const PROVENANCE = new Interface(["function rootOf(uint256) view returns (bytes32)"]);
const BATCH_ANCHORED = id("BatchAnchored(uint256,bytes32,uint32,bytes32)");

// --- the report -------------------------------------------------------------------------------

class Check {
  constructor(check, title) {
    this.check = check;
    this.title = title;
    this.checked = 0;
    this.failures = 0;
    this.failure = null;
    this.skipped = null;
  }

  passed(n = 1) {
    this.checked += n;
  }

  fail(message) {
    this.checked += 1;
    this.failures += 1;
    if (this.failure === null) this.failure = message;
  }

  get status() {
    if (this.failures) return "FAIL";
    return this.skipped === null ? "ok" : "skip";
  }

  asJson() {
    const { check, title, status, checked, failures, failure, skipped } = this;
    return { check, title, status, checked, failures, failure, skipped };
  }
}

class Report {
  constructor() {
    this.versionId = null;
    this.manifestHash = null;
    this.checks = [];
    this.timings = {};
  }

  add(checkId, title) {
    const check = new Check(checkId, title);
    this.checks.push(check);
    return check;
  }

  asJson() {
    const first = this.checks.find((c) => c.failures) ?? null;
    return {
      ok: first === null,
      versionId: this.versionId,
      manifestHash: this.manifestHash,
      firstFailure: first === null ? null : { check: first.check, fact: first.failure },
      checks: this.checks.map((c) => c.asJson()),
      timings: Object.fromEntries(
        Object.entries(this.timings).map(([k, v]) => [k, Math.round(v * 1000) / 1000]),
      ),
    };
  }
}

/** One line per check of a report, as `provenant verify` prints them. */
export function reportLines(report) {
  return report.checks.map((c) => {
    if (c.failures) {
      const more = c.failures > 1 ? ` (and ${c.failures - 1} more)` : "";
      return `FAIL  ${c.check}: ${c.title}: ${c.failure}${more}`;
    }
    if (c.skipped !== null) return `skip  ${c.check}: ${c.title}: ${c.skipped}`;
    return `ok    ${c.check}: ${c.title} (${c.checked.toLocaleString("en-US")} checked)`;
  });
}

function short(value, limit = 160) {
  let text;
  try {
    text = value === undefined ? "undefined" : canonicalize(value);
  } catch {
    text = JSON.stringify(value) ?? String(value);
  }
  return text.length <= limit ? text : text.slice(0, limit - 3) + "...";
}

function typeName(value) {
  if (value === null) return "null";
  return Array.isArray(value) ? "array" : typeof value;
}

// --- manifest.form and manifest.fields ----------------------------------------------------------

function readManifest(bytes, report) {
  const form = report.add("manifest.form", "the file is one JSON object in RFC 8785 canonical form");
  let text;
  let doc;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    doc = JSON.parse(text);
  } catch (error) {
    form.fail(`not JSON: ${error.message}`);
    return null;
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    form.fail(`the document is a JSON ${typeName(doc)}, not an object`);
    return null;
  }
  let canonical = null;
  try {
    canonical = canonicalize(doc);
  } catch (error) {
    form.fail(`it has no RFC 8785 form: ${error.message}`);
  }
  if (canonical !== null) {
    // The decoder drops a leading byte order mark, which the bytes must not have either.
    if (canonical === text && bytes[0] !== 0xef) {
      form.passed();
    } else {
      const encoded = new TextEncoder().encode(canonical);
      let at = Math.min(encoded.length, bytes.length);
      for (let i = 0; i < at; i++) {
        if (encoded[i] !== bytes[i]) {
          at = i;
          break;
        }
      }
      form.fail(
        `the bytes are not RFC 8785: they first differ from the canonical form at byte ${at} ` +
          "(a key repeated, reordered, or spacing added?)",
      );
    }
  }
  const fields = report.add(
    "manifest.fields",
    "the members this verifier reads are there, with their manifest-v1 types",
  );
  for (const [path, problem] of fieldProblems(MANIFEST_FIELDS, doc, "")) {
    fields.fail(`at ${path || "(the document)"}: ${problem}`);
  }
  if (fields.failures) return null;
  fields.passed();
  return doc;
}

// A subset of manifest-v1.schema.json: only what the checks below read, and never stricter
// than the schema.
const HASH32 = /^0x[0-9a-f]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const UINT = /^(0|[1-9][0-9]{0,77})$/;
const integer = (min, max = Infinity) => ({
  what: max === Infinity ? `an integer of at least ${min}` : `an integer in ${min}..${max}`,
  test: (v) => Number.isInteger(v) && v >= min && v <= max,
});
const matching = (pattern, what) => ({ what, test: (v) => typeof v === "string" && pattern.test(v) });
const hash32 = matching(HASH32, "a 32-byte hash (0x + 64 lowercase hex digits)");
const address = matching(ADDRESS, "an address (0x + 40 hex digits)");
const uint = matching(UINT, "an unsigned integer in a decimal string");
const string = { what: "a string", test: (v) => typeof v === "string" };
const boolean = { what: "a boolean", test: (v) => typeof v === "boolean" };
const object = { what: "an object", test: (v) => typeName(v) === "object" };
const orNull = (type) => ({ what: `${type.what} or null`, test: (v) => v === null || type.test(v) });
const arrayOf = (items) => ({ items });
const members = (shape) => ({ members: shape });

const MANIFEST_FIELDS = members({
  chainId: integer(1),
  contracts: members(Object.fromEntries(CONTRACTS.map((name) => [name, address]))),
  project: members({ id: integer(1) }),
  version: integer(1, 2 ** 32 - 1),
  versionId: uint,
  publishedAt: integer(0),
  use: members({ scope: string, scopeBit: integer(1) }),
  licence: members({
    termsHash: hash32,
    price: uint,
    token: address,
    split: members({
      feeBps: integer(0, 10_000),
      requesterBps: integer(0, 10_000),
      poolBps: integer(0, 10_000),
    }),
  }),
  trees: members({
    item: members({ root: hash32 }),
    weight: members({ root: hash32, totalWeight: uint }),
  }),
  items: arrayOf(members({ index: integer(0), contentHash: hash32, label: object, labelHash: hash32 })),
  batches: arrayOf(
    members({
      batchId: integer(1),
      root: hash32,
      answers: arrayOf(
        members({
          item: integer(0),
          contributor: address,
          answer: object,
          salt: orNull(hash32),
          submittedAt: integer(0),
          answerHash: hash32,
          consentHash: hash32,
          leafIndex: integer(0),
          leafHash: hash32,
          proof: arrayOf(hash32),
          accepted: boolean,
        }),
      ),
    }),
  ),
  contributors: arrayOf(
    members({ address, answers: integer(1), weight: uint, consents: arrayOf(hash32) }),
  ),
});

function* fieldProblems(spec, value, path) {
  if (spec.members) {
    if (typeName(value) !== "object") {
      yield [path, `expected an object, found ${short(value)}`];
      return;
    }
    for (const [name, member] of Object.entries(spec.members)) {
      const where = path ? `${path}/${name}` : name;
      if (!Object.hasOwn(value, name)) yield [where, "the member is missing"];
      else yield* fieldProblems(member, value[name], where);
    }
  } else if (spec.items) {
    if (!Array.isArray(value)) {
      yield [path, `expected an array, found ${short(value)}`];
      return;
    }
    for (let i = 0; i < value.length; i++) yield* fieldProblems(spec.items, value[i], `${path}/${i}`);
  } else if (!spec.test(value)) {
    yield [path, `expected ${spec.what}, found ${short(value)}`];
  }
}

// --- hashes and leaves ------------------------------------------------------------------------

/** keccak256 of RFC 8785 of a label: the second word of an item leaf (labels.label_hash). */
function labelHash(label) {
  return keccak256(toUtf8Bytes(canonicalize(label)));
}

/** backend/provenance/leaf.py answer_hash: keccak256(salt ‖ RFC 8785 of the answer), or for a
 *  legacy answer (salt null) keccak256 of legacy_canonical_json. */
function answerHash(answer, salt) {
  if (salt === null) return keccak256(toUtf8Bytes(legacyCanonicalJson(answer, "$")));
  const saltBytes = getBytes(salt);
  if (saltBytes.length !== 32) throw new Error(`a salt is 32 bytes (0x + 64 hex digits): ${salt}`);
  return keccak256(concat([saltBytes, toUtf8Bytes(canonicalize(answer))]));
}

/** leaf.py legacy_canonical_json, as Python's json.dumps(sort_keys=True, separators=(",", ":"),
 *  ensure_ascii=False) writes the NFC form of the value. Python tells ints from floats by how
 *  the manifest writes them; in an RFC 8785 manifest a number is written without a fraction or
 *  an exponent exactly when it is an integer below 1e21, so that decides it here. */
function legacyCanonicalJson(value, path) {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "string") return pythonString(value.normalize("NFC"));
  if (typeof value === "number") {
    return Number.isInteger(value) && Math.abs(value) < 1e21 ? String(value) : pythonFloat(value);
  }
  if (Array.isArray(value)) {
    return "[" + value.map((v, i) => legacyCanonicalJson(v, `${path}[${i}]`)).join(",") + "]";
  }
  if (typeof value === "object") {
    const encoded = new Map();
    for (const [key, v] of Object.entries(value)) {
      const normal = key.normalize("NFC");
      if (encoded.has(normal)) {
        const problem = "and another are the same once NFC-normalised";
        throw new Error(`${path}: keys ${JSON.stringify(key)} ${problem}`);
      }
      encoded.set(normal, legacyCanonicalJson(v, `${path}.${normal}`));
    }
    const keys = [...encoded.keys()].sort(byCodePoint);
    return "{" + keys.map((k) => `${pythonString(k)}:${encoded.get(k)}`).join(",") + "}";
  }
  throw new Error(`${path}: ${typeof value} has no canonical JSON encoding`);
}

// Python sorts keys by code point; JavaScript's default sort is by UTF-16 code unit, which
// differs once a key holds characters beyond U+FFFF.
function byCodePoint(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

// JSON.stringify escapes what Python's json does (quote, backslash, control characters, the
// same short forms); a lone surrogate Python cannot encode as UTF-8, so neither can this.
function pythonString(text) {
  if (!text.isWellFormed()) throw new Error("a string holds a lone surrogate, which UTF-8 cannot encode");
  return JSON.stringify(text);
}

// Python's repr of a float: the shortest digits that round-trip (as toExponential gives),
// positional for decimal exponents -4..15, else d.ddde±XX with at least two exponent digits.
function pythonFloat(x) {
  if (Object.is(x, -0)) return "-0.0";
  const [mantissa, exponentText] = x.toExponential().split("e");
  const exponent = Number(exponentText);
  const sign = mantissa.startsWith("-") ? "-" : "";
  const digits = mantissa.replace("-", "").replace(".", "");
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
    const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0");
    return `${sign}${whole}.${digits.slice(exponent + 1) || "0"}`;
  }
  const fraction = digits.length > 1 ? `.${digits.slice(1)}` : "";
  const exponentSign = exponent < 0 ? "-" : "+";
  const exponentDigits = String(Math.abs(exponent)).padStart(2, "0");
  return `${sign}${digits[0]}${fraction}e${exponentSign}${exponentDigits}`;
}

/** The EIP-55 form of an address in one case or correctly checksummed (merkle.py
 *  checksummed_address); an error naming it otherwise. */
function checksummed(value, name) {
  if (typeof value !== "string" || !ADDRESS.test(value)) {
    throw new Error(`${name} must be an address (0x + 40 hex digits): ${short(value)}`);
  }
  try {
    return getAddress(value);
  } catch {
    throw new Error(`${name} has an invalid EIP-55 checksum: ${value}`);
  }
}

function uintOf(value, limit, name) {
  if (!Number.isInteger(value) || value < 0 || BigInt(value) >= limit) {
    throw new Error(`${name} must be an integer in 0..${limit - 1n}: ${short(value)}`);
  }
  return BigInt(value);
}

/** The contribution leaf of leaf.py ContributionLeaf.hash(): keccak256(keccak256(abi.encode(
 *  contributor, projectId, itemHash, answerHash, consentHash, submittedAt))). */
function contributionLeaf({ contributor, projectId, itemHash, answerHash, consentHash, submittedAt }) {
  for (const [name, value] of [
    ["item_hash", itemHash],
    ["answer_hash", answerHash],
    ["consent_hash", consentHash],
  ]) {
    if (typeof value !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(value)) {
      throw new Error(`${name} must be a 32-byte hash (0x + 64 hex digits): ${short(value)}`);
    }
  }
  const encoded = AbiCoder.defaultAbiCoder().encode(LEAF_ENCODING, [
    checksummed(contributor, "contributor"),
    uintOf(projectId, UINT256_LIMIT, "project_id"),
    itemHash,
    answerHash,
    consentHash,
    uintOf(submittedAt, UINT64_LIMIT, "submitted_at"),
  ]);
  return keccak256(keccak256(encoded));
}

function hashPair(a, b) {
  return keccak256(a < b ? concat([a, b]) : concat([b, a]));
}

/** Whether `proof` leads `leaf` to a node already proven to lead to the batch root (the root
 *  itself at first); every node on the way is then proven too. Sound because a node that leads
 *  to the root does so whatever leaf it was reached from. */
function proves(leaf, proof, proven) {
  let node = leaf;
  const path = [];
  for (const sibling of proof) {
    if (proven.has(node)) break;
    path.push(node);
    node = hashPair(node, sibling.toLowerCase());
  }
  if (!proven.has(node)) return false;
  for (const p of path) proven.add(p);
  return true;
}

// --- the checks that need only the manifest ------------------------------------------------------

function checkManifest(doc, bytes, report, progress) {
  const facts = {
    doc,
    manifestHash: keccak256(bytes),
    consents: new Map(), // consent hash -> the contributors whose answers were given under it
    // Every batch as listed, not one root per id: a second listing of an id, with a root of
    // its own that its answers' proofs lead to, must meet the chain too.
    batches: [],
  };
  const projectId = doc.project.id;
  const items = doc.items;

  // --- items: their label hashes and the item tree
  const labelHashes = report.add("items.labelHash", "each item's labelHash is keccak256 of its label");
  const itemTree = report.add("items.tree", "the item root rebuilds from the items");
  let inOrder = true;
  for (let position = 0; position < items.length; position++) {
    const item = items[position];
    if (item.index !== position) {
      itemTree.fail(`item at position ${position} has index ${item.index}: not 0, 1, ...`);
      inOrder = false;
      break;
    }
    let found;
    try {
      found = labelHash(item.label);
    } catch (error) {
      labelHashes.fail(
        `item ${item.index}: its label ${short(item.label)} cannot be hashed: ${error.message}`,
      );
      continue;
    }
    if (found !== item.labelHash) {
      labelHashes.fail(
        `item ${item.index}: keccak256 of its label ${short(item.label)} is ${found}, the manifest ` +
          `says ${item.labelHash}`,
      );
    } else {
      labelHashes.passed();
    }
  }
  if (inOrder) {
    let root = null;
    try {
      if (!items.length) throw new Error("a tree needs at least one leaf");
      root = StandardMerkleTree.of(
        items.map((i) => [i.contentHash, i.labelHash]),
        ITEM_LEAF_ENCODING,
      ).root;
    } catch (error) {
      itemTree.fail(`the item tree cannot be built: ${error.message}`);
    }
    if (root !== null) {
      if (root === doc.trees.item.root) itemTree.passed(items.length);
      else itemTree.fail(`the items rebuild root ${root}, the manifest says ${doc.trees.item.root}`);
    }
  }

  // --- answers: commitments, leaves, proofs (a proven node is remembered per batch, so each
  // node of a tree is hashed about once however many proofs pass through it)
  const hashes = report.add("answers.hash", "each answerHash recomputes from its answer and salt");
  const leaves = report.add("answers.leaf", "each leafHash re-encodes from its fields");
  const proofs = report.add("answers.proof", "each proof verifies the leaf against its batch root");
  const accepted = new Map();
  const answered = new Map();
  const consentsOf = new Map();
  const seenLeaves = new Set();
  const total = doc.batches.reduce((n, b) => n + b.answers.length, 0);
  let done = 0;
  for (const batch of doc.batches) {
    const batchId = batch.batchId;
    const root = batch.root;
    facts.batches.push({ batchId, root });
    const proven = new Set([root.toLowerCase()]);
    for (const a of batch.answers) {
      const where = `batch ${batchId} leaf ${a.leafIndex} (item ${a.item}, ${a.contributor})`;
      done += 1;
      if (done % PROGRESS_EVERY === 0) progress("answers", done, total);
      const index = a.item;
      if (!(index >= 0 && index < items.length)) {
        leaves.fail(`${where}: item ${index} is not in the manifest`);
        continue;
      }
      let commitment;
      try {
        commitment = answerHash(a.answer, a.salt);
      } catch (error) {
        hashes.fail(`${where}: the answer cannot be hashed: ${error.message}`);
        continue;
      }
      if (commitment !== a.answerHash) {
        hashes.fail(
          `${where}: answer ${short(a.answer)} with salt ${a.salt} hashes to ${commitment}, the ` +
            `manifest says ${a.answerHash}`,
        );
      } else {
        hashes.passed();
      }
      let leaf;
      try {
        // The recomputed commitment, not the listed one: the leaf must hold this answer.
        leaf = contributionLeaf({
          contributor: a.contributor,
          projectId,
          itemHash: items[index].contentHash,
          answerHash: commitment,
          consentHash: a.consentHash,
          submittedAt: a.submittedAt,
        });
      } catch (error) {
        leaves.fail(`${where}: the leaf cannot be encoded: ${error.message}`);
        continue;
      }
      if (leaf !== a.leafHash.toLowerCase()) {
        leaves.fail(`${where}: the fields encode leaf ${leaf}, the manifest says ${a.leafHash}`);
        continue;
      }
      if (seenLeaves.has(leaf)) {
        leaves.fail(`${where}: leaf ${leaf} is listed twice`);
        continue;
      }
      seenLeaves.add(leaf);
      leaves.passed();
      if (proves(leaf, a.proof, proven)) {
        proofs.passed();
      } else {
        proofs.fail(`${where}: the proof of leaf ${leaf} does not lead to root ${root}`);
        continue;
      }
      const contributor = a.contributor.toLowerCase();
      const consent = a.consentHash.toLowerCase();
      answered.set(contributor, (answered.get(contributor) ?? 0) + 1);
      accepted.set(contributor, (accepted.get(contributor) ?? 0) + (a.accepted ? 1 : 0));
      if (!consentsOf.has(contributor)) consentsOf.set(contributor, new Set());
      consentsOf.get(contributor).add(consent);
      if (!facts.consents.has(consent)) facts.consents.set(consent, new Set());
      facts.consents.get(consent).add(contributor);
    }
  }
  progress("answers", done, total);

  checkWeights(doc, accepted, answered, consentsOf, report);
  return facts;
}

function checkWeights(doc, accepted, answered, consentsOf, report) {
  const check = report.add(
    "weights.tree",
    "each contributor's answers, weight and consents agree with the answers; the weight root " +
      "and total rebuild",
  );
  const listed = new Map();
  for (const c of doc.contributors) {
    const address = c.address.toLowerCase();
    if (listed.has(address)) {
      check.fail(`contributor ${c.address} is listed twice`);
      return;
    }
    listed.set(address, c);
  }
  for (const address of [...new Set([...listed.keys(), ...answered.keys()])].sort()) {
    const c = listed.get(address);
    if (c === undefined) {
      check.fail(`contributor ${address} has answers in the batches but is not listed`);
      continue;
    }
    const expected = {
      answers: answered.get(address) ?? 0,
      weight: String(accepted.get(address) ?? 0),
      consents: [...(consentsOf.get(address) ?? [])].sort(),
    };
    const found = {
      answers: c.answers,
      weight: String(c.weight),
      consents: c.consents.map((h) => h.toLowerCase()).sort(),
    };
    const differs = Object.keys(expected).filter((k) => short(expected[k]) !== short(found[k]));
    if (differs.length) {
      const key = differs[0];
      check.fail(
        `contributor ${c.address}: ${key} is ${short(found[key])}; the answers give ${short(expected[key])}`,
      );
    } else {
      check.passed();
    }
  }
  const weights = doc.contributors.map((c) => [c.address, BigInt(c.weight)]);
  const tree = doc.trees.weight;
  const sum = weights.reduce((n, [, w]) => n + w, 0n);
  if (String(sum) !== String(tree.totalWeight)) {
    check.fail(`the weights sum to ${sum}, the manifest says ${tree.totalWeight}`);
  }
  let root;
  try {
    const values = weights
      .filter(([, w]) => w > 0n)
      .map(([a, w]) => [checksummed(a, "a contributor's address"), w.toString()]);
    if (!values.length) throw new Error("no contributor has a non-zero weight: a version needs one");
    root = StandardMerkleTree.of(values, WEIGHT_LEAF_ENCODING).root;
  } catch (error) {
    check.fail(`the weight tree cannot be built: ${error.message}`);
    return;
  }
  if (root !== tree.root) check.fail(`the weights rebuild root ${root}, the manifest says ${tree.root}`);
}

// --- the chain ----------------------------------------------------------------------------------

class ChainReadError extends Error {}

/** What the checks read from the chain, over `rpc.call(method, params)` (plain JSON-RPC):
 *  only view calls and the BatchAnchored event. A call that fails is a ChainReadError naming
 *  it; retrying the transport is the rpc's business (httpRpc does). */
class ChainReader {
  constructor(rpc, maxBlocks) {
    this.rpc = rpc;
    this.maxBlocks = maxBlocks;
    this.calls = 0;
  }

  async request(what, method, params) {
    this.calls += 1;
    try {
      return await this.rpc.call(method, params);
    } catch (error) {
      const message = String(error?.message ?? error);
      throw new ChainReadError(message.startsWith(what) ? message : `${what}: ${message}`);
    }
  }

  async chainId() {
    return BigInt(await this.request("eth_chainId", "eth_chainId", []));
  }

  async hasCode(address) {
    const code = await this.request(`eth_getCode ${address}`, "eth_getCode", [address, "latest"]);
    return typeof code === "string" && code.replace(/^0x/, "").replace(/^0+$/, "") !== "";
  }

  async view(what, contract, address, fn, args) {
    const data = contract.encodeFunctionData(fn, args);
    const reply = await this.request(what, "eth_call", [{ to: address, data }, "latest"]);
    try {
      return contract.decodeFunctionResult(fn, reply)[0];
    } catch (error) {
      const why = error.shortMessage ?? error.message;
      throw new ChainReadError(`${what}: the reply ${short(reply, 80)} does not decode: ${why}`);
    }
  }

  async version(marketplace, versionId) {
    const what = `DatasetMarketplace.version(${versionId})`;
    const v = await this.view(what, MARKETPLACE, marketplace, "version", [versionId]);
    return v.toObject();
  }

  async marketplaceEscrow(marketplace) {
    return this.view("DatasetMarketplace.escrow()", MARKETPLACE, marketplace, "escrow", []);
  }

  async consent(registry, consentHash) {
    const record = await this.view(
      `ConsentRegistry.consentRecord(${consentHash})`,
      CONSENT,
      registry,
      "consentRecord",
      [consentHash],
    );
    return record.toObject();
  }

  async rootOf(registry, batchId) {
    const what = `ProvenanceRegistry.rootOf(${batchId})`;
    return this.view(what, PROVENANCE, registry, "rootOf", [batchId]);
  }

  async blockTime(number) {
    const block = await this.request(`eth_getBlockByNumber ${number}`, "eth_getBlockByNumber", [
      "0x" + number.toString(16),
      false,
    ]);
    if (!block) throw new ChainReadError(`eth_getBlockByNumber ${number}: the node has no such block`);
    return BigInt(block.timestamp);
  }

  /** The BatchAnchored event of each batch asked for, with its block's time, read in pages of
   *  at most maxBlocks blocks from block 0 to the latest; a page the node refuses is halved
   *  (public RPCs cap log ranges and result sizes). */
  async anchorings(registry, batchIds) {
    const wanted = new Set(batchIds.map(BigInt));
    const found = new Map();
    const times = new Map();
    const latest = Number(BigInt(await this.request("eth_blockNumber", "eth_blockNumber", [])));
    let start = 0;
    let span = this.maxBlocks;
    while (start <= latest && found.size < wanted.size) {
      const end = Math.min(latest, start + span - 1);
      let logs;
      try {
        logs = await this.request(`eth_getLogs BatchAnchored blocks ${start}-${end}`, "eth_getLogs", [
          {
            address: registry,
            fromBlock: "0x" + start.toString(16),
            toBlock: "0x" + end.toString(16),
            topics: [BATCH_ANCHORED],
          },
        ]);
      } catch (error) {
        if (span === 1) throw error;
        span = Math.max(1, Math.floor(span / 2));
        continue;
      }
      for (const log of logs) {
        const batchId = BigInt(log.topics[1]);
        if (!wanted.has(batchId) || found.has(batchId)) continue;
        const number = Number(BigInt(log.blockNumber));
        if (!times.has(number)) times.set(number, await this.blockTime(number));
        found.set(batchId, { root: log.topics[2], blockNumber: number, timestamp: times.get(number) });
      }
      start = end + 1;
    }
    return found;
  }
}

async function checkChain(facts, reader, report, progress) {
  const doc = facts.doc;
  const contracts = doc.contracts;
  const network = report.add("chain.network", "the chain and the contracts are the manifest's");
  const chainId = await reader.chainId();
  if (chainId !== BigInt(doc.chainId)) {
    network.fail(`the RPC serves chain ${chainId}; the manifest is for chain ${doc.chainId}`);
    return;
  }
  network.passed();
  for (const name of CONTRACTS) {
    if (await reader.hasCode(contracts[name])) network.passed();
    else network.fail(`${name} ${contracts[name]} has no code on chain ${chainId}`);
  }
  if (network.failures) return;
  const escrow = await reader.marketplaceEscrow(contracts.DatasetMarketplace);
  if (escrow.toLowerCase() !== contracts.ProjectEscrow.toLowerCase()) {
    network.fail(
      `DatasetMarketplace ${contracts.DatasetMarketplace} uses escrow ${escrow}, the manifest ` +
        `names ${contracts.ProjectEscrow}`,
    );
    return;
  }

  await checkVersion(
    facts,
    reader,
    report.add(
      "chain.version",
      "the version is registered with this manifest's hash, roots, total weight and terms",
    ),
  );
  await checkBatches(
    facts,
    reader,
    report.add(
      "chain.batches",
      "each batch root is the one ProvenanceRegistry anchored at or before publication",
    ),
  );
  const royalty = await checkConsents(
    facts,
    reader,
    report.add(
      "chain.consent",
      "each answer's consent is on chain for its contributor and in force for the version's use " +
        "at publication",
    ),
    progress,
  );
  const pool = report.add("chain.royalty", "the royalty pool honours every consent's royalty share");
  const split = doc.licence.split;
  if (split.feeBps + split.requesterBps + split.poolBps !== 10_000) {
    pool.fail(`the split ${short(split)} does not add up to 10,000 basis points`);
  }
  if (royalty.length) {
    const [most, consentHash] = royalty.reduce((best, r) =>
      r[0] > best[0] || (r[0] === best[0] && r[1] > best[1]) ? r : best,
    );
    if (split.poolBps < most) {
      pool.fail(`the pool is ${split.poolBps} bps; consent ${consentHash} promises ${most} bps`);
    } else {
      pool.passed(royalty.length);
    }
  }
}

function plain(value) {
  if (typeof value === "bigint" || typeof value === "number") return BigInt(value).toString();
  if (typeof value === "string") return value.toLowerCase();
  return String(value);
}

async function checkVersion(facts, reader, check) {
  const doc = facts.doc;
  const versionId = BigInt(doc.versionId);
  if (versionId >= UINT256_LIMIT) {
    check.fail(`version ${versionId} is beyond uint256: DatasetMarketplace has no such version`);
    return;
  }
  const onChain = await reader.version(doc.contracts.DatasetMarketplace, versionId);
  if (onChain.registeredAt === 0n) {
    check.fail(`version ${versionId} is not registered in DatasetMarketplace`);
    return;
  }
  const { licence } = doc;
  const expected = {
    projectId: doc.project.id,
    version: doc.version,
    manifestHash: facts.manifestHash,
    itemRoot: doc.trees.item.root,
    weightRoot: doc.trees.weight.root,
    totalWeight: BigInt(doc.trees.weight.totalWeight),
    termsHash: licence.termsHash,
    price: BigInt(licence.price),
    token: licence.token,
    feeBps: licence.split.feeBps,
    requesterBps: licence.split.requesterBps,
    poolBps: licence.split.poolBps,
  };
  for (const [key, want] of Object.entries(expected)) {
    const got = plain(onChain[key]);
    if (got !== plain(want)) {
      check.fail(`version ${versionId}: ${key} on chain is ${got}; the manifest gives ${plain(want)}`);
    } else {
      check.passed();
    }
  }
  if (onChain.withdrawn) check.fail(`version ${versionId} was withdrawn from sale`);
  if (onChain.registeredAt < BigInt(doc.publishedAt)) {
    check.fail(
      `version ${versionId} was registered at ${onChain.registeredAt}, before its publication ` +
        `time ${doc.publishedAt}`,
    );
  }
}

async function checkBatches(facts, reader, check) {
  const registry = facts.doc.contracts.ProvenanceRegistry;
  const published = BigInt(facts.doc.publishedAt);
  const anchored = await reader.anchorings(
    registry,
    facts.batches.map((b) => b.batchId).filter((batchId) => BigInt(batchId) < UINT256_LIMIT),
  );
  const roots = new Map();
  for (const { batchId, root } of [...facts.batches].sort((a, b) => a.batchId - b.batchId)) {
    if (BigInt(batchId) >= UINT256_LIMIT) {
      check.fail(`batch ${batchId}: beyond uint256, ProvenanceRegistry has no such batch`);
      continue;
    }
    if (!roots.has(batchId)) roots.set(batchId, await reader.rootOf(registry, batchId));
    const onChain = roots.get(batchId);
    const event = anchored.get(BigInt(batchId));
    if (onChain.toLowerCase() !== root.toLowerCase()) {
      check.fail(`batch ${batchId}: ProvenanceRegistry holds root ${onChain}, the manifest gives ${root}`);
    } else if (event === undefined) {
      check.fail(`batch ${batchId}: no BatchAnchored event for it`);
    } else if (event.timestamp > published) {
      check.fail(
        `batch ${batchId}: anchored at ${event.timestamp} (block ${event.blockNumber}), after the ` +
          `version's publication time ${published}`,
      );
    } else {
      check.passed();
    }
  }
}

/** backend/consent/eligibility.py consent_exclusion, which is ConsentRegistry's
 *  consentInForceAt(consentHash, at, scopeBit): null if in force, else why not. */
function consentExclusion({ scopes, recordedAt, revokedAt, validUntil }, scopeBit, at) {
  if (!recordedAt || recordedAt > at) return "consent_not_recorded";
  if (revokedAt && revokedAt <= at) return "consent_revoked";
  if (validUntil && at > validUntil) return "consent_ended";
  if ((scopes & scopeBit) !== scopeBit) return "no_consent_for_use";
  return null;
}

/** Checks every consent; returns [royaltyBps, consent hash] of those that hold. */
async function checkConsents(facts, reader, check, progress) {
  const doc = facts.doc;
  const registry = doc.contracts.ConsentRegistry;
  const { scope, scopeBit } = doc.use;
  const royalty = [];
  const known = Object.hasOwn(SCOPE_BITS, scope) ? SCOPE_BITS[scope] : undefined;
  if (known !== scopeBit) {
    check.fail(`the use ${JSON.stringify(scope)} has bit ${known ?? "none"}, not ${scopeBit}`);
    return royalty;
  }
  const at = BigInt(doc.publishedAt);
  const consents = [...facts.consents].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  let done = 0;
  for (const [consentHash, contributors] of consents) {
    const record = await reader.consent(registry, consentHash);
    progress("consents", ++done, consents.length);
    const holder = record.contributor.toLowerCase();
    const others = [...contributors].filter((c) => c !== holder).sort();
    if (record.recordedAt === 0n) {
      check.fail(
        `consent ${consentHash} (of ${[...contributors].sort()[0]}) is not on chain: consent_not_recorded`,
      );
      continue;
    }
    if (others.length) {
      check.fail(
        `consent ${consentHash} is ${record.contributor}'s; answers of ${others[0]} were given under it`,
      );
      continue;
    }
    const why = consentExclusion(record, BigInt(scopeBit), at);
    if (why !== null) {
      check.fail(
        `contributor ${record.contributor}: consent ${consentHash} was not in force for ${scope} ` +
          `at ${doc.publishedAt}: ${why} (recorded ${record.recordedAt}, revoked ` +
          `${record.revokedAt}, valid until ${record.validUntil}, scopes ${record.scopes})`,
      );
      continue;
    }
    check.passed();
    royalty.push([Number(record.royaltyBps), consentHash]);
  }
  return royalty;
}

// --- the entry points ---------------------------------------------------------------------------

/**
 * Verifies a dataset version from its manifest's bytes and the chain.
 *
 * @param {Uint8Array|ArrayBuffer} bytes the manifest file, exactly as published
 * @param {{call(method: string, params: unknown[]): Promise<unknown>}} rpc plain JSON-RPC
 *   (eth_chainId, eth_getCode, eth_call, eth_blockNumber, eth_getLogs, eth_getBlockByNumber):
 *   httpRpc(url), or an adapter over a wallet's provider.request({method, params})
 * @param {{maxBlocks?: number, progress?: (what: string, done: number, total: number) => void}}
 *   options maxBlocks: blocks per eth_getLogs page (10,000); progress: told how far the
 *   answers and the consents are
 * @returns the report: {ok, versionId, manifestHash, firstFailure, checks, timings}
 */
export async function verifyManifest(bytes, rpc, options = {}) {
  const { maxBlocks = 10_000, progress = () => {} } = options;
  if (!Number.isInteger(maxBlocks) || maxBlocks < 1) {
    throw new RangeError(`maxBlocks is a positive integer, not ${maxBlocks}`);
  }
  if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
  const report = new Report();
  const t0 = performance.now();
  const doc = readManifest(bytes, report);
  if (doc === null) return report.asJson();
  report.versionId = doc.versionId;
  const facts = checkManifest(doc, bytes, report, progress);
  report.manifestHash = facts.manifestHash;
  report.timings.manifest_s = (performance.now() - t0) / 1000;

  const t1 = performance.now();
  const reader = new ChainReader(rpc, maxBlocks);
  try {
    await checkChain(facts, reader, report, progress);
  } catch (error) {
    if (!(error instanceof ChainReadError)) throw error;
    report.add("chain.read", "the chain answers").fail(error.message);
  }
  report.timings.chain_s = (performance.now() - t1) / 1000;
  report.timings.chain_calls = reader.calls;
  return report.asJson();
}

/**
 * A JSON-RPC client over HTTP with fetch, for node and browsers alike. A transport failure,
 * a timeout, HTTP 429 or 5xx is retried with backoff (0.25 s, doubling); an error the node
 * answers with is not. Either way the error names the method and the endpoint.
 */
export function httpRpc(url, { retries = 4, timeoutMs = 30_000, fetch: fetchFn = globalThis.fetch } = {}) {
  let nextId = 1;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // The result, an Error the node answered with (final), or a string: what went wrong on the
  // way (worth another try).
  async function attempt(method, body) {
    let response;
    try {
      response = await fetchFn(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      return error.cause?.message ?? error.message ?? String(error);
    }
    if (response.status === 429 || response.status >= 500) return `HTTP ${response.status}`;
    if (!response.ok) return { error: new Error(`${method} at ${url}: HTTP ${response.status}`) };
    let reply;
    try {
      reply = await response.json();
    } catch (error) {
      return `the reply is not JSON: ${error.message}`;
    }
    if (reply?.error) {
      return { error: new Error(`${method} at ${url}: ${reply.error.message ?? short(reply.error)}`) };
    }
    if (reply === null || typeof reply !== "object" || !Object.hasOwn(reply, "result")) {
      return { error: new Error(`${method} at ${url}: the reply has no result: ${short(reply)}`) };
    }
    return { result: reply.result };
  }

  return {
    async call(method, params) {
      const body = JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params });
      let delay = 250;
      for (let tries = 0; ; tries++) {
        const outcome = await attempt(method, body);
        if (typeof outcome !== "string") {
          if (outcome.error) throw outcome.error;
          return outcome.result;
        }
        if (tries >= retries) throw new Error(`${method} at ${url}: ${outcome}`);
        await sleep(delay);
        delay *= 2;
      }
    },
  };
}
