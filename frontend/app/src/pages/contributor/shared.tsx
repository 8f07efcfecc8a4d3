// What the contributor's pages share: amounts in the network's token, the projects' titles,
// and the wallet that must be the signed-in account.
import { useCallback, useEffect, useState, type ReactNode } from "react";
import { createPublicClient, erc20Abi, formatUnits, http, type Address } from "viem";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useSession } from "../../session";

export type Project = components["schemas"]["ProjectPublic"];

interface TokenInfo {
  decimals: number;
  symbol: string;
}

// Tokens other than the network's default are read from the chain once per page load.
const tokenInfos = new Map<string, Promise<TokenInfo>>();

function readToken(rpcUrl: string, token: string): Promise<TokenInfo> {
  const key = token.toLowerCase();
  let found = tokenInfos.get(key);
  if (!found) {
    const client = createPublicClient({ transport: http(rpcUrl) });
    const address = token as Address;
    found = Promise.all([
      client.readContract({ address, abi: erc20Abi, functionName: "decimals" }),
      client.readContract({ address, abi: erc20Abi, functionName: "symbol" }),
    ]).then(([decimals, symbol]) => ({ decimals: Number(decimals), symbol }));
    found.catch(() => tokenInfos.delete(key));
    tokenInfos.set(key, found);
  }
  return found;
}

/** A base-unit amount in its token's units, with the token's symbol: the network's default
 *  token unless another is named (a project may pay in any ERC-20; `tokens` lists those to
 *  read from the chain). */
export function useAmount(tokens: (string | null | undefined)[] = []): (units: string | number | null | undefined, token?: string | null) => string {
  const { network } = useSession();
  const [infos, setInfos] = useState<Record<string, TokenInfo>>({});
  const wanted = tokens
    .filter((t): t is string => !!t && t.toLowerCase() !== network?.token.toLowerCase())
    .map((t) => t.toLowerCase());
  const key = [...new Set(wanted)].sort().join(",");
  useEffect(() => {
    if (!network || !key) return;
    for (const token of key.split(",")) {
      readToken(network.rpc_url, token)
        .then((info) => setInfos((now) => ({ ...now, [token]: info })))
        .catch(() => undefined); // shown in base units, with the token's address
    }
  }, [network, key]);
  return useCallback(
    (units, token) => {
      if (units === null || units === undefined) return "—";
      const other = token && network && token.toLowerCase() !== network.token.toLowerCase();
      if (other) {
        const info = infos[token.toLowerCase()];
        if (!info) return `${units} base units of ${token}`;
        return `${formatUnits(BigInt(units), info.decimals)} ${info.symbol}`;
      }
      const decimals = network?.token_decimals ?? 18;
      const symbol = network?.token_symbol ?? "";
      return `${formatUnits(BigInt(units), decimals)} ${symbol}`.trim();
    },
    [network, infos],
  );
}

/** Every open project (newest first), loaded once per page. */
export function useProjects(): [Project[] | null, string | null, () => void] {
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    api
      .GET("/projects", { params: { query: { limit: 200 } } })
      .then((r) => setProjects(unwrap(r)))
      .catch((e: Error) => setError(e.message));
  }, []);
  useEffect(load, [load]);
  return [projects, error, load];
}

/** The wallet, checked to be the account that signed in (signatures must be theirs). */
export function useOwnWallet() {
  const { requireWallet, address } = useSession();
  return useCallback(async () => {
    const wallet = await requireWallet();
    if (address && wallet.address.toLowerCase() !== address.toLowerCase()) {
      throw new Error(
        `Your wallet's account ${wallet.address} is not the one signed in (${address}); switch accounts or sign in again.`,
      );
    }
    return wallet;
  }, [requireWallet, address]);
}

export const TASK_TYPES: Record<string, string> = {
  image_classification: "Image classification",
  image_bbox: "Bounding boxes",
  text_classification: "Text classification",
  transcription: "Transcription",
};

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso.endsWith("Z") || iso.includes("+") ? iso : iso + "Z");
  return d.toLocaleString();
}

export function short(hash: string | null | undefined): string {
  if (!hash) return "—";
  return hash.length > 14 ? `${hash.slice(0, 8)}…${hash.slice(-4)}` : hash;
}

/** Re-run `tick` every `ms` while `active`. */
export function usePoll(active: boolean, ms: number, tick: () => void): void {
  useEffect(() => {
    if (!active) return;
    const id = setInterval(tick, ms);
    return () => clearInterval(id);
  }, [active, ms, tick]);
}

/** A table's horizontal scroller, reachable by keyboard (narrow screens scroll it). */
export function Scroll({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="scroll" tabIndex={0} role="region" aria-label={label}>
      {children}
    </div>
  );
}
