// The reward budget, escrowed on chain: the service prepares the transactions and the
// requester's own wallet signs and sends them (approve + deposit, or a permit signature and
// one deposit).
import { useCallback, useEffect, useState } from "react";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorNote, useAction } from "../../errors";
import { useSession } from "../../session";
import type { Hex } from "viem";
import { Faucet } from "./Faucet";
import { bigJson, parseBigJson, toBaseUnits, tokens, type Budget as BudgetData, type Project } from "./shared";
import { formatUnits } from "viem";

type Tx = { description: string; to: string; data: string; value?: string };
// The requester sees every epoch in full (EpochDetail); the extra fields may be absent.
type Epoch = components["schemas"]["EpochPublic"] & Partial<Pick<components["schemas"]["EpochDetail"], "contributor_count" | "accepted_answers" | "error">>;

export function Budget({ project, itemCount }: { project: Project; itemCount: number }) {
  const { network, requireWallet } = useSession();
  const [budget, setBudget] = useState<BudgetData | null>(null);
  const [load, loadError] = useAction();
  const [run, error, busy] = useAction();
  const [method, setMethod] = useState<"approve" | "permit">("approve");
  const [steps, setSteps] = useState<string[]>([]);
  const [amount, setAmount] = useState<string | null>(null);

  const fetchBudget = useCallback(async () => {
    const found = unwrap(await api.GET("/projects/{project_id}/budget", { params: { path: { project_id: project.id } } }));
    setBudget(found);
    return found;
  }, [project.id]);
  const [epochs, setEpochs] = useState<Epoch[]>([]);
  const refresh = useCallback(
    () =>
      load(async () => {
        await fetchBudget();
        const found = unwrap(await api.GET("/projects/{project_id}/reward-epochs", { params: { path: { project_id: project.id } } }));
        setEpochs(found as Epoch[]);
      }),
    [load, fetchBudget, project.id],
  );
  useEffect(() => {
    refresh();
  }, [refresh]);

  // Enough for every item to get its answers (gold items aside), as a starting suggestion.
  const suggested = BigInt(project.reward_per_answer) * BigInt(project.overlap) * BigInt(Math.max(itemCount, 1));
  const shown = amount ?? (network ? formatUnits(suggested, network.token_decimals) : "");

  const step = (text: string) => setSteps((old) => [...old, text]);

  const fund = () =>
    run(async () => {
      setSteps([]);
      const base = toBaseUnits(shown, network, "Amount");
      if (base <= 0n) throw new Error("Amount: fund with more than 0 tokens.");
      const wallet = await requireWallet();
      const before = budget ? BigInt(budget.deposited) : 0n;
      let txs: Tx[];
      if (method === "approve") {
        const plan = unwrap(
          await api.POST("/projects/{project_id}/funding", {
            params: { path: { project_id: project.id } },
            body: { amount: base } as never,
            bodySerializer: bigJson,
          }),
        );
        txs = plan.transactions;
      } else {
        const reply = await api.GET("/projects/{project_id}/funding/permit", {
          params: { path: { project_id: project.id }, query: { amount: base.toString() as never } },
          parseAs: "text",
        });
        const permit = parseBigJson<{ deadline: number | bigint; typed_data: object }>(unwrap(reply) as unknown as string);
        step("Sign the permit in your wallet…");
        const signature = await wallet.signTypedData(permit.typed_data as never);
        const tx = unwrap(
          await api.POST("/projects/{project_id}/funding/permit", {
            params: { path: { project_id: project.id } },
            body: { amount: base, deadline: permit.deadline, signature } as never,
            bodySerializer: bigJson,
          }),
        );
        txs = [tx];
      }
      for (const [i, tx] of txs.entries()) {
        step(`Transaction ${i + 1} of ${txs.length}: ${tx.description} — confirm it in your wallet…`);
        const hash = await wallet.send(tx);
        step(`Transaction ${i + 1} of ${txs.length} sent (${hash}); waiting for it to be mined…`);
        await wallet.waitForReceipt(hash as Hex);
        step(`Transaction ${i + 1} of ${txs.length} mined.`);
      }
      // The budget follows the chain's events, indexed by the worker: wait until it shows.
      step("Waiting for the service to index the deposit…");
      const until = Date.now() + 180_000;
      for (;;) {
        const now = await fetchBudget();
        if (BigInt(now.deposited) > before) break;
        if (Date.now() > until) throw new Error("The deposit is on chain but the budget has not shown it after three minutes; refresh later.");
        await new Promise((r) => setTimeout(r, 1000));
      }
      step(`Funded: ${tokens(base, network)} deposited.`);
      setAmount(null);
    });

  // Close (no new work), then take back what no reward root committed.
  const [endRun, endError, endBusy] = useAction();
  const [confirmClose, setConfirmClose] = useState(false);
  const finish = (action: "close" | "withdraw") =>
    endRun(async () => {
      const wallet = await requireWallet();
      const path = { params: { path: { project_id: project.id } } };
      const tx = unwrap(
        action === "close"
          ? await api.POST("/projects/{project_id}/close", path)
          : await api.POST("/projects/{project_id}/withdraw", path),
      );
      const hash = await wallet.send(tx);
      await wallet.waitForReceipt(hash as Hex);
      const until = Date.now() + 60_000;
      for (;;) {
        const now = await fetchBudget();
        if (action === "close" ? now.closed : BigInt(now.withdrawn) > BigInt(budget?.withdrawn ?? "0")) break;
        if (Date.now() > until) throw new Error("The transaction is mined but the budget has not shown it after a minute; refresh later.");
        await new Promise((r) => setTimeout(r, 1000));
      }
      setConfirmClose(false);
    });

  return (
    <section className="req-panel" aria-labelledby="budget-title">
      <h2 id="budget-title">Budget</h2>
      <ErrorNote error={loadError} />
      {budget ? (
        <dl className="req-facts" aria-label="Budget figures">
          <dt>Deposited</dt>
          <dd data-testid="budget-deposited">{tokens(budget.deposited, network)}</dd>
          <dt>Committed to contributors</dt>
          <dd>{tokens(budget.committed, network)}</dd>
          <dt>Paid out</dt>
          <dd>{tokens(budget.paid, network)}</dd>
          <dt>Withdrawn</dt>
          <dd>{tokens(budget.withdrawn, network)}</dd>
          <dt>Remaining</dt>
          <dd data-testid="budget-remaining">{tokens(budget.remaining, network)}</dd>
          <dt>Accepted, not yet in a reward root</dt>
          <dd>{tokens(budget.accepted_not_posted, network)}</dd>
          <dt>Reward epoch</dt>
          <dd>{budget.epoch}</dd>
          <dt>Escrow</dt>
          <dd className="mono">{budget.registered ? budget.escrow : "not registered on chain yet (the first funding registers it)"}</dd>
          {budget.closed ? (
            <>
              <dt>State</dt>
              <dd>closed</dd>
            </>
          ) : null}
        </dl>
      ) : (
        <p aria-busy="true">Reading the budget…</p>
      )}
      {budget?.waiting && BigInt(budget.accepted_not_posted) > 0n ? (
        <p role="status" className="error">
          Accepted work is waiting: {budget.waiting}
        </p>
      ) : null}

      <h3>Reward epochs</h3>
      {epochs.length === 0 ? (
        <p className="muted">No reward root yet: accepted answers are paid in epochs, each a Merkle root posted on chain.</p>
      ) : (
        <div className="req-scroll" role="region" aria-label="Reward epochs" tabIndex={0}>
          <table>
            <caption className="visually-hidden">Reward epochs</caption>
            <thead>
              <tr>
                <th scope="col">Epoch</th>
                <th scope="col">Status</th>
                <th scope="col">Total owed (cumulative)</th>
                <th scope="col">Contributors</th>
                <th scope="col">Transaction</th>
              </tr>
            </thead>
            <tbody>
              {epochs.map((e) => (
                <tr key={e.epoch}>
                  <td>{e.epoch}</td>
                  <td>
                    {e.status}
                    {e.error ? <div className="error">{e.error}</div> : null}
                  </td>
                  <td>{tokens(e.total, network)}</td>
                  <td>{e.contributor_count ?? "—"}</td>
                  <td className="mono" title={e.tx_hash ?? undefined}>
                    {e.tx_hash ? `${e.tx_hash.slice(0, 10)}…` : "—"}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      {budget?.closed ? null : (
        <>
          <h3>Fund from your wallet</h3>
          <Faucet />
          <form
            onSubmit={(e) => {
              e.preventDefault();
              fund();
            }}
          >
            <label htmlFor="fund-amount">Amount ({network?.token_symbol ?? "tokens"})</label>
            <input id="fund-amount" inputMode="decimal" value={shown} onChange={(e) => setAmount(e.target.value)} aria-describedby="fund-hint" />
            <p id="fund-hint" className="req-hint">
              Suggested: reward × answers per item × {itemCount} item{itemCount === 1 ? "" : "s"}. Unspent tokens return to you when the project closes.
            </p>
            <fieldset>
              <legend>How to authorise the escrow</legend>
              <label className="req-check">
                <input type="radio" name="fund-method" checked={method === "approve"} onChange={() => setMethod("approve")} />
                Approve, then deposit (two transactions)
              </label>
              <label className="req-check">
                <input type="radio" name="fund-method" checked={method === "permit"} onChange={() => setMethod("permit")} />
                Sign a permit, then deposit (one transaction; tokens with EIP-2612 permits)
              </label>
            </fieldset>
            <div className="req-row">
              <button type="submit" className="primary" disabled={busy}>
                {busy ? "Funding…" : "Fund the budget"}
              </button>
              <button type="button" onClick={refresh}>
                Refresh budget
              </button>
            </div>
          </form>
          {steps.length ? (
            <ol aria-live="polite">
              {steps.map((s, i) => (
                <li key={i}>{s}</li>
              ))}
            </ol>
          ) : null}
          <ErrorNote error={error} />
        </>
      )}

      {budget?.registered ? (
        <>
          <h3>Close and withdraw</h3>
          {!budget.closed ? (
            confirmClose ? (
              <div className="req-row">
                <span>Closing stops new tasks for good; contributors keep what reward roots gave them.</span>
                <button type="button" className="primary" disabled={endBusy} onClick={() => finish("close")}>
                  {endBusy ? "Closing…" : "Yes, close the project"}
                </button>
                <button type="button" disabled={endBusy} onClick={() => setConfirmClose(false)}>
                  Keep it open
                </button>
              </div>
            ) : (
              <div className="req-row">
                <button type="button" onClick={() => setConfirmClose(true)}>
                  Close the project…
                </button>
              </div>
            )
          ) : BigInt(budget.remaining) > 0n ? (
            <div className="req-row">
              <button type="button" className="primary" disabled={endBusy} onClick={() => finish("withdraw")}>
                {endBusy ? "Withdrawing…" : `Withdraw ${tokens(budget.remaining, network)}`}
              </button>
            </div>
          ) : (
            <p className="muted">The project is closed and nothing is left to withdraw.</p>
          )}
          <ErrorNote error={endError} />
        </>
      ) : null}
    </section>
  );
}
