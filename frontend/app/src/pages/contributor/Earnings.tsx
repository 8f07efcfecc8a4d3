// Earnings per project: pending (not yet decided), accepted but not yet in a posted root,
// claimable and claimed; a claim either relayed by the operator (no gas) or sent from the
// contributor's own wallet with their Merkle proof.
import { useCallback, useEffect, useState } from "react";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorNote, useAction } from "../../errors";
import { useAmount, useOwnWallet, useProjects, usePoll } from "./shared";

type Earning = components["schemas"]["EarningsPublic"];
type Royalty = components["schemas"]["RoyaltyProof"];

/** After a claim, until the service shows it (it mirrors the chain): poll, and say so. */
function useSettling(claimed: string, done: string | null, reload: () => void): boolean {
  const [before, setBefore] = useState<string | null>(null);
  useEffect(() => {
    if (done !== null) setBefore(claimed);
    // Only a new claim resets the figure to wait for.
  }, [done]);
  const settling = done !== null && before !== null && claimed === before;
  usePoll(settling, 1500, reload);
  return settling;
}

export function EarningsPage() {
  const [rows, setRows] = useState<Earning[] | null>(null);
  const [loadRun, loadError] = useAction();
  const [projects] = useProjects();
  const amount = useAmount(rows?.map((r) => r.token) ?? []);
  const load = useCallback(() => loadRun(async () => setRows(unwrap(await api.GET("/earnings/me")))), [loadRun]);
  useEffect(() => {
    load();
  }, [load]);
  // Decisions and reward roots arrive from the worker: keep the figures current meanwhile.
  const waiting = !!rows?.some((r) => r.pending !== "0" || r.accepted_not_posted !== "0");
  usePoll(waiting, 3000, load);

  const title = (id: number) => projects?.find((p) => p.id === id)?.title ?? `Project ${id}`;
  return (
    <section aria-labelledby="earnings-title">
      <h2 id="earnings-title">Your earnings</h2>
      <p className="muted">
        Answers wait for validation (pending); accepted ones are paid once the operator posts them in a reward root
        (claimable). Claim through the operator at no gas cost, or from your own wallet with your proof.
      </p>
      <ErrorNote error={loadError} />
      {rows === null ? (
        <p aria-busy="true">Loading your earnings…</p>
      ) : rows.length === 0 ? (
        <p>
          No earnings yet. <a href="#/contribute">Pick a project</a> and start labelling.
        </p>
      ) : (
        <ul className="earnings">
          {rows.map((r) => (
            <EarningCard
              key={r.project_id}
              row={r}
              title={title(r.project_id)}
              amount={(units) => amount(units, r.token)}
              reload={load}
            />
          ))}
        </ul>
      )}
      <Royalties />
    </section>
  );
}

/** Royalties: the contributor's share of every licence sold for a version holding their work. */
function Royalties() {
  const [rows, setRows] = useState<Royalty[] | null>(null);
  const [loadRun, loadError] = useAction();
  const load = useCallback(() => loadRun(async () => setRows(unwrap(await api.GET("/me/royalties")))), [loadRun]);
  useEffect(() => {
    load();
  }, [load]);
  return (
    <>
      <h2 id="royalties-title">Royalties from dataset sales</h2>
      <ErrorNote error={loadError} />
      {rows === null ? (
        loadError ? null : <p aria-busy="true">Loading your royalties…</p>
      ) : rows.length === 0 ? (
        <p className="muted">No published dataset version holds your work yet.</p>
      ) : (
        <ul className="earnings" aria-labelledby="royalties-title">
          {rows.map((r) => (
            <RoyaltyCard key={r.version_id} row={r} reload={load} />
          ))}
        </ul>
      )}
    </>
  );
}

function RoyaltyCard({ row, reload }: { row: Royalty; reload: () => void }) {
  const amount = useAmount();
  const ownWallet = useOwnWallet();
  const [run, error, busy] = useAction();
  const [done, setDone] = useState<string | null>(null);
  const settling = useSettling(row.claimed, done, reload);
  const headingId = `royalty-${row.version_id}`;
  const share = Number(row.total_weight) > 0 ? (Number(row.weight) / Number(row.total_weight)) * 100 : 0;

  const relayed = () =>
    run(async () => {
      setDone(null);
      const r = unwrap(await api.POST("/versions/{version_id}/royalties/claim", { params: { path: { version_id: row.version_id } } }));
      setDone(`Claimed ${amount(r.amount)}: the operator sent it to your account (transaction ${r.tx_hash}).`);
      reload();
    });

  const own = () =>
    run(async () => {
      setDone(null);
      // A fresh proof: the pool may have grown since the page was loaded.
      const proof = unwrap(await api.GET("/versions/{version_id}/royalties/me", { params: { path: { version_id: row.version_id } } }));
      if (!proof.transaction) throw new Error("Nothing to claim from this version right now.");
      const wallet = await ownWallet();
      const hash = await wallet.send(proof.transaction);
      await wallet.waitForReceipt(hash);
      setDone(`Claimed ${amount(proof.claimable)} from your wallet (transaction ${hash}).`);
      reload();
    });

  const claimable = row.claimable !== "0" && !settling;
  return (
    <li className="earning" aria-labelledby={headingId}>
      <h3 id={headingId}>
        <a href={`#/datasets/${row.version_id}`}>Dataset version {row.version_id}</a>
      </h3>
      <dl className="figures">
        <div>
          <dt>Your weight</dt>
          <dd>
            {row.weight} of {row.total_weight} ({share.toFixed(1)}%)
          </dd>
        </div>
        <div>
          <dt>Royalty pool</dt>
          <dd>{amount(row.pool)}</dd>
        </div>
        <div>
          <dt>Claimable</dt>
          <dd className={claimable ? "ok strong" : undefined}>{amount(row.claimable)}</dd>
        </div>
        <div>
          <dt>Claimed</dt>
          <dd>{amount(row.claimed)}</dd>
        </div>
      </dl>
      {claimable ? (
        <p className="claim-actions">
          <button type="button" className="primary" disabled={busy} onClick={relayed}>
            Claim royalty {amount(row.claimable)} (no gas)
          </button>{" "}
          <button type="button" disabled={busy} onClick={own}>
            Claim royalty from my wallet
          </button>
        </p>
      ) : null}
      {busy ? <p aria-busy="true">Claiming…</p> : null}
      {done ? (
        <p role="status" className="ok mono-wrap">
          {done}
        </p>
      ) : null}
      <ErrorNote error={error} />
    </li>
  );
}

function EarningCard({
  row,
  title,
  amount,
  reload,
}: {
  row: Earning;
  title: string;
  amount: (u: string) => string;
  reload: () => void;
}) {
  const ownWallet = useOwnWallet();
  const [run, error, busy] = useAction();
  const [done, setDone] = useState<string | null>(null);
  const settling = useSettling(row.claimed, done, reload);
  const headingId = `earning-${row.project_id}`;

  const relayed = () =>
    run(async () => {
      setDone(null);
      const r = unwrap(await api.POST("/projects/{project_id}/rewards/claim", { params: { path: { project_id: row.project_id } } }));
      setDone(`Claimed ${amount(r.amount)}: the operator sent it to your account (transaction ${r.tx_hash}).`);
      reload();
    });

  const own = () =>
    run(async () => {
      setDone(null);
      const proof = unwrap(await api.GET("/projects/{project_id}/rewards/proof", { params: { path: { project_id: row.project_id } } }));
      const wallet = await ownWallet();
      const hash = await wallet.send(proof.transaction);
      await wallet.waitForReceipt(hash);
      setDone(`Claimed ${amount(proof.claimable)} from your wallet with a ${proof.proof.length}-hash proof against reward epoch ${proof.epoch} (transaction ${hash}).`);
      reload();
    });

  const claimable = row.claimable !== "0" && !settling;
  return (
    <li className="earning" aria-labelledby={headingId}>
      <h3 id={headingId}>
        <a href={`#/contribute/${row.project_id}`}>{title}</a>
      </h3>
      <dl className="figures">
        <div>
          <dt>Pending</dt>
          <dd>
            {amount(row.pending)} <span className="muted">({row.pending_answers} answers)</span>
          </dd>
        </div>
        <div>
          <dt>Accepted, awaiting a reward root</dt>
          <dd>{amount(row.accepted_not_posted)}</dd>
        </div>
        <div>
          <dt>Claimable</dt>
          <dd className={claimable ? "ok strong" : undefined}>{amount(row.claimable)}</dd>
        </div>
        <div>
          <dt>Claimed</dt>
          <dd>{amount(row.claimed)}</dd>
        </div>
        <div>
          <dt>Answers</dt>
          <dd>
            {row.accepted_answers} accepted, {row.rejected_answers} rejected, {row.pending_answers} pending
          </dd>
        </div>
      </dl>
      {claimable ? (
        <p className="claim-actions">
          <button type="button" className="primary" disabled={busy} onClick={relayed}>
            Claim {amount(row.claimable)} (no gas)
          </button>{" "}
          <button type="button" disabled={busy} onClick={own}>
            Claim from my wallet
          </button>
        </p>
      ) : null}
      {busy ? <p aria-busy="true">Claiming…</p> : null}
      {done ? (
        <p role="status" className="ok mono-wrap">
          {done}
        </p>
      ) : null}
      <ErrorNote error={error} />
    </li>
  );
}
