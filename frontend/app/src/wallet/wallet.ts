// The person's wallet: found by EIP-6963 (window.ethereum when none announces itself), and
// every signature and every transaction that moves their tokens made in it, through viem.
import { createWalletClient, custom, type Address, type Hex, type WalletClient } from "viem";
import { parseSiweMessage } from "viem/siwe";

export interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] | object }): Promise<unknown>;
}

export interface WalletInfo {
  uuid: string;
  name: string;
  icon?: string;
  rdns?: string;
  provider: Eip1193Provider;
}

/** Wallets that announce themselves (EIP-6963) within `waitMs`, or window.ethereum. */
export async function discoverWallets(waitMs = 150): Promise<WalletInfo[]> {
  const found = new Map<string, WalletInfo>();
  const onAnnounce = (event: Event) => {
    const detail = (event as CustomEvent).detail as { info: Omit<WalletInfo, "provider">; provider: Eip1193Provider };
    if (detail?.info?.uuid && detail.provider) found.set(detail.info.uuid, { ...detail.info, provider: detail.provider });
  };
  window.addEventListener("eip6963:announceProvider", onAnnounce);
  window.dispatchEvent(new Event("eip6963:requestProvider"));
  await new Promise((r) => setTimeout(r, waitMs));
  window.removeEventListener("eip6963:announceProvider", onAnnounce);
  const injected = (window as unknown as { ethereum?: Eip1193Provider }).ethereum;
  if (found.size === 0 && injected) {
    found.set("injected", { uuid: "injected", name: "Browser wallet", provider: injected });
  }
  return [...found.values()];
}

/** A wallet's refusal or failure, said in words a person can act on. */
export function walletErrorMessage(error: unknown): string {
  const e = error as { code?: number; shortMessage?: string; message?: string; cause?: { code?: number } };
  const code = e?.code ?? e?.cause?.code;
  if (code === 4001) return "You rejected the request in your wallet; nothing was signed or sent.";
  if (code === 4100) return "Your wallet has not authorised this site; connect it again.";
  if (code === 4902) return "Your wallet does not know this chain; add it in the wallet first.";
  return e?.shortMessage ?? e?.message ?? String(error);
}

export class Wallet {
  readonly client: WalletClient;

  constructor(
    readonly info: WalletInfo,
    readonly address: Address,
  ) {
    this.client = createWalletClient({ account: address, transport: custom(info.provider) });
  }

  static async connect(info: WalletInfo): Promise<Wallet> {
    const accounts = (await info.provider.request({ method: "eth_requestAccounts" })) as Address[];
    if (!accounts?.length) throw new Error("The wallet gave no account.");
    return new Wallet(info, accounts[0]);
  }

  async chainId(): Promise<number> {
    return Number(await this.info.provider.request({ method: "eth_chainId" }));
  }

  /** Throws, saying which chain to switch to, unless the wallet is on `expected`. */
  async requireChain(expected: number): Promise<void> {
    const current = await this.chainId();
    if (current === expected) return;
    try {
      await this.info.provider.request({
        method: "wallet_switchEthereumChain",
        params: [{ chainId: `0x${expected.toString(16)}` }],
      });
    } catch {
      throw new Error(
        `Your wallet is on chain ${current}; this marketplace runs on chain ${expected}. Switch networks in your wallet and try again.`,
      );
    }
    if ((await this.chainId()) !== expected) {
      throw new Error(`Your wallet is still on chain ${await this.chainId()}; switch it to chain ${expected}.`);
    }
  }

  /** Sign the service's EIP-4361 message, having checked it names this site, account and chain. */
  async signSiwe(message: string, chainId: number): Promise<Hex> {
    const fields = parseSiweMessage(message);
    if (fields.address?.toLowerCase() !== this.address.toLowerCase()) {
      throw new Error("The sign-in message names another account; it was not signed.");
    }
    if (fields.chainId !== chainId) {
      throw new Error(`The sign-in message is for chain ${fields.chainId}, not ${chainId}; it was not signed.`);
    }
    return this.client.signMessage({ account: this.address, message });
  }

  /** eth_signTypedData_v4 of typed data as the API gives it (domain, types, primaryType, message). */
  async signTypedData(typed: { domain: object; types: Record<string, unknown>; primaryType: string; message: object }): Promise<Hex> {
    const types = { ...(typed.types as Record<string, unknown>) };
    delete types.EIP712Domain; // viem derives it from the domain
    // The API's typed data is only known at run time: viem's static typing cannot follow it.
    const params = { account: this.address, domain: typed.domain, types, primaryType: typed.primaryType, message: typed.message };
    return this.client.signTypedData(params as unknown as Parameters<WalletClient["signTypedData"]>[0]);
  }

  /** Send an unsigned transaction the API prepared ({to, data, value}); returns its hash. */
  async send(tx: { to: string; data: string; value?: string | number | null }): Promise<Hex> {
    return this.client.sendTransaction({
      account: this.address,
      chain: null,
      to: tx.to as Address,
      data: tx.data as Hex,
      value: tx.value ? BigInt(tx.value) : undefined,
    });
  }

  async waitForReceipt(hash: Hex, timeoutMs = 60_000): Promise<{ status: string }> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const receipt = (await this.info.provider.request({ method: "eth_getTransactionReceipt", params: [hash] })) as { status: string } | null;
      if (receipt) {
        if (receipt.status !== "0x1") throw new Error(`Transaction ${hash} was reverted on chain.`);
        return receipt;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`Transaction ${hash} was not mined within ${timeoutMs / 1000} s.`);
  }
}
