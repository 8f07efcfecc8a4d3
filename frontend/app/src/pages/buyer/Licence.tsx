// Buying a licence from the buyer's own wallet: the service prepares approve then buy, the
// wallet signs and sends each, and the licence counts once the marketplace has recorded it.
import { useState } from "react";
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

export function Licence({ version, onLicensed }: { version: Version; onLicensed: () => Promise<boolean> }) {
  const { address, network, signIn, requireWallet } = useSession();
  const [steps, setSteps] = useState<Step[]>([]);
  const [waiting, setWaiting] = useState(false);
  const [run, error, busy] = useAction();

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
      setSteps(plan.transactions.map((tx) => ({ description: tx.description, state: "to send" })));
      for (const [i, tx] of plan.transactions.entries()) {
        update(i, { state: "confirm it in your wallet…" });
        const hash = await wallet.send(tx);
        update(i, { state: "sent, waiting for the chain…", hash });
        await wallet.waitForReceipt(hash);
        update(i, { state: "confirmed" });
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
  return (
    <>
      <p>
        A licence costs {tokens(version.price, network)}: your wallet first allows the marketplace to take the price,
        then buys. Part of it goes to the contributors whose answers are in the dataset.
      </p>
      <button type="button" className="primary" disabled={busy} onClick={buy}>
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
