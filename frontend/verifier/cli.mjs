#!/usr/bin/env node
// node frontend/verifier/cli.mjs MANIFEST --rpc URL [--json] [--max-blocks N] [--retries N]
//
// The JavaScript verifier (verify.mjs) from a shell: one line per check, or with --json the
// report as provenant verify --json gives it. Exits 0 only if every check holds, 1 otherwise,
// 2 on a usage error.
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";

import { httpRpc, reportLines, verifyManifest } from "./verify.mjs";

const USAGE =
  "usage: node frontend/verifier/cli.mjs MANIFEST --rpc URL [--json] [--max-blocks N] [--retries N]";

function usage(problem) {
  process.stderr.write(`${problem}\n${USAGE}\n`);
  process.exit(2);
}

function count(text, name) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) usage(`--${name} takes a whole number, not ${text}`);
  return n;
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      rpc: { type: "string" },
      json: { type: "boolean", default: false },
      "max-blocks": { type: "string", default: "10000" },
      retries: { type: "string", default: "4" },
    },
  });
} catch (error) {
  usage(error.message);
}
const { values, positionals } = parsed;
if (positionals.length !== 1) usage("name one MANIFEST file");
if (!values.rpc) usage("--rpc URL is required");
const maxBlocks = count(values["max-blocks"], "max-blocks");
if (maxBlocks < 1) usage("--max-blocks is at least 1");

let bytes;
try {
  bytes = await readFile(positionals[0]);
} catch (error) {
  process.stderr.write(`cannot read ${positionals[0]}: ${error.message}\n`);
  process.exit(1);
}

const rpc = httpRpc(values.rpc, { retries: count(values.retries, "retries") });
const report = await verifyManifest(new Uint8Array(bytes), rpc, { maxBlocks });
if (values.json) {
  process.stdout.write(JSON.stringify(report, null, 2) + "\n");
} else {
  const lines = reportLines(report);
  if (report.firstFailure === null) {
    lines.push(`verified: version ${report.versionId}, manifest ${report.manifestHash}`);
  } else {
    lines.push(`NOT VERIFIED: ${report.firstFailure.check}: ${report.firstFailure.fact}`);
  }
  process.stdout.write(lines.join("\n") + "\n");
}
process.exitCode = report.ok ? 0 : 1;
