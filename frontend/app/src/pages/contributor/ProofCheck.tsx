// One contribution checked here, in the browser, against the chain: its leaf recomputed from
// its fields, the Merkle proof followed to the batch root, and that root read from
// ProvenanceRegistry through the chain's RPC, not through this service.
import { useState } from "react";
import { createPublicClient, http, parseAbi, type Address, type Hex } from "viem";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorNote, useAction } from "../../errors";
import { leafHash, rootOf } from "../../merkle";
import { useSession } from "../../session";

type Contribution = components["schemas"]["ContributionPublic"];

const REGISTRY_ABI = parseAbi(["function rootOf(uint256) view returns (bytes32)"]);

/** The StandardMerkleTree leaf of a contribution, from its fields. */
export function leafOf(c: Contribution): Hex {
  const { leaf } = c;
  return leafHash(c.leaf_encoding, [
    leaf.contributor as Address,
    BigInt(leaf.project_id),
    leaf.item_hash as Hex,
    leaf.answer_hash as Hex,
    leaf.consent_hash as Hex,
    BigInt(leaf.submitted_at),
  ]);
}

interface Outcome {
  ok: boolean;
  lines: string[];
}

export function ProofCheck({ answerId }: { answerId: number }) {
  const { network } = useSession();
  const [run, error, busy] = useAction();
  const [outcome, setOutcome] = useState<Outcome | null>(null);

  const check = () =>
    run(async () => {
      setOutcome(null);
      const c = unwrap(await api.GET("/contributions/{answer_id}", { params: { path: { answer_id: answerId } } }));
      const lines: string[] = [];
      const leaf = leafOf(c);
      if (leaf !== c.leaf_hash.toLowerCase()) {
        return setOutcome({ ok: false, lines: [`The leaf recomputed from its fields is ${leaf}, not ${c.leaf_hash}.`] });
      }
      lines.push("The leaf recomputed from its fields matches.");
      if (!c.batch || !c.proof || c.batch.status !== "anchored") {
        return setOutcome({ ok: false, lines: [...lines, "The answer is not anchored yet; check again later."] });
      }
      const root = rootOf(leaf, c.proof);
      if (root !== c.batch.root.toLowerCase()) {
        return setOutcome({ ok: false, lines: [...lines, `The proof leads to ${root}, not to batch ${c.batch.batch_id}'s root ${c.batch.root}.`] });
      }
      lines.push(`The ${c.proof.length}-hash proof leads it to batch ${c.batch.batch_id}'s root.`);
      const registry = c.batch.registry ?? network?.contracts.ProvenanceRegistry;
      if (!network || !registry) throw new Error("The chain's RPC or the registry's address is not known.");
      const client = createPublicClient({ transport: http(network.rpc_url) });
      const onChain = await client.readContract({
        address: registry as Address,
        abi: REGISTRY_ABI,
        functionName: "rootOf",
        args: [BigInt(c.batch.batch_id)],
      });
      if (onChain.toLowerCase() !== root) {
        return setOutcome({ ok: false, lines: [...lines, `ProvenanceRegistry holds ${onChain} for batch ${c.batch.batch_id}, not this root.`] });
      }
      lines.push(`ProvenanceRegistry (${registry}) holds that root for batch ${c.batch.batch_id}.`);
      setOutcome({ ok: true, lines });
    });

  return (
    <div className="proof-check">
      <button type="button" disabled={busy} aria-busy={busy} onClick={check} aria-label={`Check on chain: answer ${answerId}`}>
        Check on chain
      </button>
      {outcome ? (
        <div role="status" className={outcome.ok ? "ok" : "error"}>
          <strong>{outcome.ok ? "Verified on chain" : "Not verified"}</strong>
          <ul>
            {outcome.lines.map((l) => (
              <li key={l}>{l}</li>
            ))}
          </ul>
        </div>
      ) : null}
      <ErrorNote error={error} />
    </div>
  );
}
