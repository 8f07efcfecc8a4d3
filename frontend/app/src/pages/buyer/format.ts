import { formatUnits } from "viem";
import type { Network } from "../../session";

/** A price in the token's base units, in whole tokens with the token's symbol. */
export function tokens(amount: string | null | undefined, network: Network | null): string {
  if (amount == null) return "—";
  if (!network) return `${amount} base units`;
  return `${formatUnits(BigInt(amount), network.token_decimals)} ${network.token_symbol}`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function short(hex: string | null | undefined): string {
  if (!hex) return "—";
  return hex.length > 14 ? `${hex.slice(0, 10)}…${hex.slice(-6)}` : hex;
}
