// Buying a licence from the buyer's own wallet: the service prepares approve then buy, the
// wallet signs and sends each, and the licence counts once the marketplace has recorded it.
import { useCallback, useEffect, useState } from "react";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorNote, useAction } from "../../errors";
import { useSession } from "../../session";
import { tokens } from "./format";

type Version = components["schemas"]["VersionPublic"];

interface Step {
  description: string;
  state: string;
  hash?: string;
}

const RECORD_TIMEOUT_MS = 90_000;
const LOCAL_CHAIN_IDS = [31337, 1337]; // backend/core/config.py: where POST /faucet works

export function Licence({ version, onLicensed }: { version: Version; onLicensed: () => Promise<boolean> }) {
  const { address, network, signIn, requireWallet } = useSession();
  const [steps, setSteps] = useState<Step[]>([]);
  const [waiting, setWaiting] = useState(false);
  const [run, error, busy] = useAction();

  const [balance, setBalance] = useState<bigint | null>(null);
  const [faucet, faucetError, funding] = useAction();

  // The buyer's balance of the version's token, read from the chain itself.
  const readBalance = useCallback(async () => {
    if (!address || !network) return;
    // balanceOf(address): selector 0x70a08231, the address padded to 32 bytes.
    const data = "0x70a08231" + address.slice(2).toLowerCase().padStart(64, "0");
    const reply = await fetch(network.rpc_url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_call", params: [{ to: version.token, data }, "latest"] }),
    });
    const { result } = (await reply.json()) as { result?: string };
    setBalance(result && result !== "0x" ? BigInt(result) : null);
  }, [address, network, version.token]);

  useEffect(() => {
    setBalance(null);
    readBalance().catch(() => setBalance(null)); // unknown balance: the purchase says why if it fails
  }, [readBalance]);

  const update = (i: number, change: Partial<Step>) =>
    setSteps((all) => all.map((s, j) => (j === i ? { ...s, ...change } : s)));

  const buy = () =>
    run(async () => {
      const wallet = await requireWallet();
      if (address && wallet.address.toLowerCase() !== address.toLowerCase()) {
        throw new Error(`Your wallet's account is ${wallet.address} but you signed in as ${address}: switch account or sign in again.`);
      }
      const plan = unwrap(
        await api.GET("/versions/{version_id}/licence-plan", { params: { path: { version_id: version.id } } }),
      );
      // The approval names the price in whole tokens; the service's words name base units.
      const say = (tx: { to: string; description: string }) =>
        tx.to.toLowerCase() === plan.token.toLowerCase()
          ? `Allow the marketplace to take ${tokens(plan.price, network)}`
          : tx.description.charAt(0).toUpperCase() + tx.description.slice(1);
      setSteps(plan.transactions.map((tx) => ({ description: say(tx), state: "to send" })));
      for (const [i, tx] of plan.transactions.entries()) {
        try {
          update(i, { state: "confirm it in your wallet…" });
          const hash = await wallet.send(tx);
          update(i, { state: "sent, waiting for the chain…", hash });
          await wallet.waitForReceipt(hash);
          update(i, { state: "confirmed" });
        } catch (error) {
          update(i, { state: "not done" });
          throw error;
        }
      }
      // The service learns of the sale from the chain's events, a few seconds later.
      setWaiting(true);
      try {
        const deadline = Date.now() + RECORD_TIMEOUT_MS;
        while (!(await onLicensed())) {
          if (Date.now() > deadline) {
            throw new Error(
              "Your purchase is on chain but the marketplace has not recorded it yet; reload this page in a minute.",
            );
          }
          await new Promise((r) => setTimeout(r, 1000));
        }
      } finally {
        setWaiting(false);
      }
    });

  if (!address) {
    return (
      <>
        <p>Sign in with your wallet to license this version for {tokens(version.price, network)}.</p>
        <button type="button" disabled={busy} onClick={() => run(signIn)}>
          Sign in to license
        </button>
        <ErrorNote error={error} />
      </>
    );
  }
  const short = balance !== null && balance < BigInt(version.price);
  const local = network !== null && LOCAL_CHAIN_IDS.includes(network.chain_id);
  return (
    <>
      {balance !== null ? (
        <p>
          Your wallet holds {tokens(balance.toString(), network)}
          {short ? `: not enough for a licence at ${tokens(version.price, network)}.` : "."}
        </p>
      ) : null}
      {short && local ? (
        <p>
          <button
            type="button"
            disabled={funding}
            onClick={() =>
              faucet(async () => {
                unwrap(await api.POST("/faucet", {}));
                await readBalance();
              })
            }
          >
            {funding ? "Asking the faucet…" : "Get test tokens"}
          </button>{" "}
          <span className="muted">This is a local test chain: its tokens are free.</span>
        </p>
      ) : null}
      <ErrorNote error={faucetError} />
      <p>
        A licence costs {tokens(version.price, network)}: your wallet first allows the marketplace to take the price,
        then buys. Part of it goes to the contributors whose answers are in the dataset.
      </p>
      <button type="button" className="primary" disabled={busy || short} onClick={buy}>
        {busy ? "Licensing…" : `License for ${tokens(version.price, network)}`}
      </button>
      {steps.length ? (
        <ol aria-label="Licence transactions" aria-live="polite">
          {steps.map((s) => (
            <li key={s.description}>
              {s.description}: <strong>{s.state}</strong>
              {s.hash ? <span className="mono"> {s.hash}</span> : null}
            </li>
          ))}
        </ol>
      ) : null}
      {waiting ? <p aria-busy="true">Waiting for the marketplace to record your licence…</p> : null}
      <ErrorNote error={error} />
    </>
  );
}
