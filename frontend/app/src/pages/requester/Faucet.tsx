// Test tokens for a local chain: the service mints reward tokens and sets gas money.
import { useState } from "react";
import { api, unwrap } from "../../api/client";
import { ErrorNote, useAction } from "../../errors";
import { useSession } from "../../session";
import { LOCAL_CHAIN_IDS, tokens } from "./shared";

export function Faucet({ onFunded }: { onFunded?: () => void }) {
  const { network } = useSession();
  const [run, error, busy] = useAction();
  const [done, setDone] = useState<string | null>(null);
  if (!network || !LOCAL_CHAIN_IDS.includes(network.chain_id)) return null;
  return (
    <div className="req-row">
      <button
        type="button"
        disabled={busy}
        onClick={() =>
          run(async () => {
            setDone(null);
            const got = unwrap(await api.POST("/faucet", {})) as Record<string, string>;
            setDone(`Sent ${tokens(got.tokens, network)} and ${tokens(got.wei, { ...network, token_decimals: 18, token_symbol: "ETH" })} for gas to your wallet.`);
            onFunded?.();
          })
        }
      >
        {busy ? "Asking the faucet…" : "Get test tokens"}
      </button>
      <span className="muted">This is a local test chain: its tokens are free.</span>
      {done ? (
        <p role="status" className="ok">
          {done}
        </p>
      ) : null}
      <ErrorNote error={error} />
    </div>
  );
}
