// Consent: the terms in full, the uses the contributor allows and an optional end date, signed
// as EIP-712 typed data in their wallet; the operator records it on chain (no gas for them).
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorNote, useAction } from "../../errors";
import { Scroll, short, useOwnWallet, usePoll, when } from "./shared";

type Terms = components["schemas"]["TermsPublic"];
type Status = components["schemas"]["ConsentStatusPublic"];
type ConsentRow = components["schemas"]["ConsentPublic"];

const SCOPE_LABELS: Record<string, string> = {
  research: "Research",
  commercial_ai_training: "Commercial AI training",
};

/** The caller's consent status, kept fresh while a relay is under way. */
export function useConsentStatus(): [Status | null, string | null, () => void] {
  const [status, setStatus] = useState<Status | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    api
      .GET("/consent")
      .then((r) => {
        setStatus(unwrap(r));
        setError(null);
      })
      .catch((e: Error) => setError(e.message));
  }, []);
  useEffect(load, [load]);
  const relaying = !!status?.history.some(
    (c) => c.status === "pending" || (c.revocation && c.revocation.status === "pending"),
  );
  usePoll(relaying, 1000, load);
  return [status, error, load];
}

function relayState(c: ConsentRow): string {
  if (c.revocation) {
    return c.revocation.status === "recorded" ? "revoked on chain" : `revocation ${c.revocation.status}`;
  }
  return c.status === "recorded" ? "recorded on chain" : c.status;
}

export function ConsentPage() {
  const [status, statusError, reload] = useConsentStatus();
  return (
    <section aria-labelledby="consent-title">
      <h2 id="consent-title">Your consent</h2>
      <ErrorNote error={statusError} />
      {status === null ? <p aria-busy="true">Loading your consent…</p> : <ConsentStatus status={status} reload={reload} />}
      <ConsentForm onSigned={reload} hasActive={!!status?.active} />
      {status && status.history.length > 0 ? <ConsentHistory rows={status.history} /> : null}
    </section>
  );
}

function ConsentStatus({ status, reload }: { status: Status; reload: () => void }) {
  const ownWallet = useOwnWallet();
  const [run, error, busy] = useAction();
  const active = status.active;
  const revoke = (c: ConsentRow) =>
    run(async () => {
      const prepared = unwrap(
        await api.POST("/consent/{consent_hash}/revoke/typed-data", { params: { path: { consent_hash: c.consent_hash } } }),
      );
      const wallet = await ownWallet();
      const typed = prepared.typed_data as Parameters<typeof wallet.signTypedData>[0];
      const signature = await wallet.signTypedData(typed);
      const msg = typed.message as { nonce: number; deadline: number };
      unwrap(
        await api.POST("/consent/{consent_hash}/revoke", {
          params: { path: { consent_hash: c.consent_hash } },
          body: { nonce: msg.nonce, deadline: msg.deadline, signature },
        }),
      );
      reload();
    });
  if (!active) {
    const pending = status.history.find((c) => !c.revocation && c.status !== "failed" && c.status !== "recorded");
    return pending ? (
      <p role="status">Your consent is signed; the operator is recording it on chain ({pending.status})…</p>
    ) : (
      <p role="status">You have no consent in force. Sign one below before your first task.</p>
    );
  }
  return (
    <div className="consent-active">
      <p role="status" className="ok">
        Consent in force: {active.scopes.map((s) => SCOPE_LABELS[s] ?? s).join(", ")}
        {active.valid_until ? `, until ${when(active.valid_until)}` : ", no end date"} — {relayState(active)}.
      </p>
      <dl className="facts">
        <dt>Terms</dt>
        <dd>version {active.terms_version}, royalty {active.royalty_bps / 100}%</dd>
        <dt>Consent hash</dt>
        <dd className="mono">{active.consent_hash}</dd>
        <dt>Transaction</dt>
        <dd className="mono">{active.tx_hash ?? "not yet sent"}</dd>
      </dl>
      {active.revocation && active.revocation.status !== "failed" ? null : (
        <button type="button" disabled={busy} onClick={() => revoke(active)}>
          {busy ? "Check your wallet…" : "Revoke this consent"}
        </button>
      )}
      <ErrorNote error={error} />
    </div>
  );
}

function ConsentForm({ onSigned, hasActive }: { onSigned: () => void; hasActive: boolean }) {
  const ownWallet = useOwnWallet();
  const [terms, setTerms] = useState<Terms | null>(null);
  const [scopes, setScopes] = useState<string[]>([]);
  const [endDate, setEndDate] = useState("");
  const [run, error, busy] = useAction();
  const [loadRun, loadError] = useAction();

  useEffect(() => {
    loadRun(async () => {
      const all = unwrap(await api.GET("/consent/terms"));
      const newest = all[all.length - 1] ?? null;
      setTerms(newest);
      setScopes(newest ? newest.scopes.map((s) => s.name) : []);
    });
  }, [loadRun]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    run(async () => {
      if (!terms) return;
      if (scopes.length === 0) throw new Error("Choose at least one use you allow.");
      const prepared = unwrap(
        await api.POST("/consent/typed-data", {
          body: { scopes, terms_version: terms.version, valid_until: endDate || null },
        }),
      );
      const wallet = await ownWallet();
      const typed = prepared.typed_data as Parameters<typeof wallet.signTypedData>[0];
      const signature = await wallet.signTypedData(typed);
      const msg = typed.message as { termsVersion: number; scopes: number; nonce: number; deadline: number; validUntil?: number };
      unwrap(
        await api.POST("/consent", {
          body: {
            terms_version: msg.termsVersion,
            scopes: msg.scopes,
            nonce: msg.nonce,
            deadline: msg.deadline,
            valid_until: msg.validUntil ?? null,
            signature,
          },
        }),
      );
      onSigned();
    });
  };

  if (loadError) return <ErrorNote error={loadError} />;
  if (!terms) return <p aria-busy="true">Loading the consent terms…</p>;
  const today = new Date().toISOString().slice(0, 10);
  return (
    <form onSubmit={submit} className="consent-form" aria-labelledby="terms-title">
      <h3 id="terms-title">{hasActive ? "Sign new consent terms" : terms.title}</h3>
      <p className="muted">
        Terms version {terms.version}; royalty share {terms.royalty_bps / 100}% of each licence sold. Terms hash{" "}
        <span className="mono">{short(terms.terms_hash)}</span>
      </p>
      <div className="terms-text" tabIndex={0} role="region" aria-label="Consent terms">
        {terms.text}
      </div>
      <fieldset>
        <legend>Uses you allow</legend>
        {terms.scopes.map((s) => (
          <label key={s.name} className="check">
            <input
              type="checkbox"
              checked={scopes.includes(s.name)}
              onChange={(e) => setScopes((now) => (e.target.checked ? [...now, s.name] : now.filter((n) => n !== s.name)))}
            />{" "}
            {SCOPE_LABELS[s.name] ?? s.name}: <span className="muted">{s.description}</span>
          </label>
        ))}
      </fieldset>
      <label htmlFor="consent-end">End date (optional; usable until the end of that day, UTC)</label>
      <input id="consent-end" type="date" min={today} value={endDate} onChange={(e) => setEndDate(e.target.value)} />
      <p>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Check your wallet…" : "Sign consent in your wallet"}
        </button>
      </p>
      <ErrorNote error={error} />
    </form>
  );
}

function ConsentHistory({ rows }: { rows: ConsentRow[] }) {
  return (
    <>
      <h3>Consent history</h3>
      <Scroll label="Consent history">
        <table>
          <caption className="sr-only">Every consent you signed</caption>
          <thead>
            <tr>
              <th scope="col">Consent</th>
              <th scope="col">Uses</th>
              <th scope="col">Until</th>
              <th scope="col">State</th>
              <th scope="col">On chain since</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((c) => (
              <tr key={c.consent_hash}>
                <td className="mono" title={c.consent_hash}>
                  {short(c.consent_hash)}
                </td>
                <td>{c.scopes.map((s) => SCOPE_LABELS[s] ?? s).join(", ")}</td>
                <td>{c.valid_until ? when(c.valid_until) : "no end date"}</td>
                <td>
                  {relayState(c)}
                  {c.error ? <span className="error"> {c.error}</span> : null}
                  {c.revocation?.error ? <span className="error"> {c.revocation.error}</span> : null}
                </td>
                <td>{when(c.revocation?.revoked_at ?? c.recorded_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Scroll>
    </>
  );
}
