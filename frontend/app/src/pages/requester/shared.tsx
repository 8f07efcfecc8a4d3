// What the requester's pages share: token amounts in the network's units, the task types and
// their export formats, and small display helpers.
import { formatUnits, parseUnits } from "viem";
import type { components } from "../../api/schema";
import type { Network } from "../../session";

export type Project = components["schemas"]["ProjectPublic"];
export type Item = components["schemas"]["ItemPublic"];
export type Budget = components["schemas"]["BudgetPublic"];
export type Version = components["schemas"]["VersionPublic"];

export const TASK_TYPES: [string, string][] = [
  ["image_classification", "Image classification"],
  ["image_bbox", "Image bounding boxes"],
  ["text_classification", "Text classification"],
  ["transcription", "Transcription / structuring (free text or JSON)"],
];

export function taskLabel(type: string): string {
  return TASK_TYPES.find(([t]) => t === type)?.[1] ?? type;
}

export function isImageTask(type: string): boolean {
  return type === "image_classification" || type === "image_bbox";
}

/** The export formats the service builds per task type (backend/datasets/exports). */
export const FORMATS: [string, string, string[]][] = [
  ["jsonl", "JSON Lines", ["image_classification", "image_bbox", "text_classification", "transcription"]],
  ["csv", "CSV", ["image_classification", "image_bbox", "text_classification", "transcription"]],
  ["coco", "COCO", ["image_classification", "image_bbox"]],
  ["yolo", "YOLO", ["image_bbox"]],
  ["imagefolder", "Image folder (one directory per class)", ["image_classification"]],
  ["huggingface", "Hugging Face (Parquet)", ["image_classification", "image_bbox", "text_classification", "transcription"]],
];

// The chain ids the faucet serves (backend/core/config.py LOCAL_CHAIN_IDS).
export const LOCAL_CHAIN_IDS = [31337, 1337];

export function decimalsOf(network: Network | null): number {
  return network?.token_decimals ?? 18;
}

/** A token amount typed by a person ("1.5") in base units; throws a readable error. */
export function toBaseUnits(amount: string, network: Network | null, what: string): bigint {
  const text = amount.trim();
  const decimals = decimalsOf(network);
  if (!/^\d+(\.\d+)?$/.test(text)) throw new Error(`${what}: enter a number of tokens such as 1 or 0.25.`);
  const fraction = text.split(".")[1] ?? "";
  if (fraction.length > decimals) throw new Error(`${what}: the token has ${decimals} decimals; ${text} has more.`);
  return parseUnits(text, decimals);
}

/** Base units (a decimal string) as tokens, with the network's symbol. */
export function tokens(base: string | bigint | null | undefined, network: Network | null): string {
  if (base === null || base === undefined) return "—";
  const symbol = network?.token_symbol ?? "tokens";
  return `${formatUnits(BigInt(base), decimalsOf(network))} ${symbol}`;
}

export function short(hex: string | null | undefined): string {
  if (!hex) return "—";
  return hex.length > 14 ? `${hex.slice(0, 8)}…${hex.slice(-6)}` : hex;
}

export function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)} %`;
}

/** JSON with bigint values written as plain numbers: token amounts exceed JavaScript's safe
 * integers, and the API reads them as integers. */
export function bigJson(body: unknown): string {
  const marked = JSON.stringify(body, (_key, value) => (typeof value === "bigint" ? `__big__${value.toString()}__big__` : value));
  return marked.replace(/"__big__(\d+)__big__"/g, "$1");
}

/** JSON whose integers beyond 2^53 become bigints instead of rounded numbers: typed data to
 * sign must reach the wallet exactly as the service hashes it (a weight total, an amount). */
export function parseBigJson<T>(text: string): T {
  const marked = text.replace(/([:[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"__big__$2"');
  return JSON.parse(marked, (_key, value) =>
    typeof value === "string" && value.startsWith("__big__") ? BigInt(value.slice(7)) : value,
  ) as T;
}
