// Who is here: their wallet, their API session and the chain the service runs on, shared by
// every page. Sign-in is SIWE: the service writes the EIP-4361 message, the wallet signs it.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, setBearer, unwrap } from "./api/client";
import type { components } from "./api/schema";
import { discoverWallets, Wallet, type WalletInfo } from "./wallet/wallet";

export type Network = components["schemas"]["NetworkPublic"];

interface SessionState {
  network: Network | null;
  wallets: WalletInfo[];
  wallet: Wallet | null;
  address: string | null; // signed in as
  connect(info: WalletInfo): Promise<Wallet>;
  signIn(): Promise<void>;
  signOut(): Promise<void>;
  /** The connected wallet, on the service's chain (connecting the first wallet found). */
  requireWallet(): Promise<Wallet>;
}

const SessionContext = createContext<SessionState | null>(null);
const STORED = "provenant.session";

export function SessionProvider({ children }: { children: ReactNode }) {
  const [network, setNetwork] = useState<Network | null>(null);
  const [wallets, setWallets] = useState<WalletInfo[]>([]);
  const [wallet, setWallet] = useState<Wallet | null>(null);
  const [address, setAddress] = useState<string | null>(null);

  useEffect(() => {
    api.GET("/network").then((r) => setNetwork(unwrap(r))).catch(() => setNetwork(null));
    discoverWallets().then(setWallets);
    const stored = sessionStorage.getItem(STORED);
    if (stored) {
      const { token, address } = JSON.parse(stored) as { token: string; address: string };
      setBearer(token);
      api.GET("/auth/me").then((r) => (r.response.ok ? setAddress(address) : forget()));
    }
  }, []);

  const forget = () => {
    sessionStorage.removeItem(STORED);
    setBearer(null);
    setAddress(null);
  };

  const connect = useCallback(async (info: WalletInfo) => {
    const connected = await Wallet.connect(info);
    setWallet(connected);
    return connected;
  }, []);

  const requireWallet = useCallback(async () => {
    let current = wallet;
    if (!current) {
      const found = wallets.length ? wallets : await discoverWallets();
      if (!found.length) throw new Error("No browser wallet was found. Install one (an EIP-1193 wallet) and reload.");
      current = await connect(found[0]);
    }
    if (network) await current.requireChain(network.chain_id);
    return current;
  }, [wallet, wallets, network, connect]);

  const signIn = useCallback(async () => {
    const w = await requireWallet();
    const nonce = unwrap(await api.GET("/auth/nonce", { params: { query: { address: w.address } } }));
    const signature = await w.signSiwe(nonce.message!, nonce.chain_id);
    const session = unwrap(await api.POST("/auth/verify", { body: { message: nonce.message!, signature } }));
    setBearer(session.token);
    sessionStorage.setItem(STORED, JSON.stringify({ token: session.token, address: session.address }));
    setAddress(session.address);
  }, [requireWallet]);

  const signOut = useCallback(async () => {
    await api.POST("/auth/logout").catch(() => undefined);
    forget();
  }, []);

  const value = useMemo(
    () => ({ network, wallets, wallet, address, connect, signIn, signOut, requireWallet }),
    [network, wallets, wallet, address, connect, signIn, signOut, requireWallet],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionState {
  const state = useContext(SessionContext);
  if (!state) throw new Error("useSession outside SessionProvider");
  return state;
}
