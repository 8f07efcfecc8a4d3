// Dataset versions: publish one from the decided items (the worker builds it), follow the
// build, register it on chain by signing its terms (the operator relays), and see its sales.
import { useCallback, useEffect, useState } from "react";
import { api, unwrap } from "../../api/client";
import { ErrorNote, useAction } from "../../errors";
import { useSession } from "../../session";
import { bigJson, FORMATS, parseBigJson, short, toBaseUnits, tokens, type Project, type Version } from "./shared";

const SCOPES: [string, string][] = [
  ["commercial_ai_training", "Commercial AI training"],
  ["research", "Research only (non-commercial)"],
];

export function Versions({ project }: { project: Project }) {
  const [versions, setVersions] = useState<Version[] | null>(null);
  const [load, loadError] = useAction();
  const fetchVersions = useCallback(async () => {
    setVersions(unwrap(await api.GET("/projects/{project_id}/versions", { params: { path: { project_id: project.id } } })));
  }, [project.id]);
  const refresh = useCallback(() => load(fetchVersions), [load, fetchVersions]);
  useEffect(() => {
    refresh();
  }, [refresh]);

  // Follow builds in progress.
  const building = versions?.some((v) => v.status === "building") ?? false;
  useEffect(() => {
    if (!building) return;
    const timer = setInterval(() => fetchVersions().catch(() => undefined), 1500);
    return () => clearInterval(timer);
  }, [building, fetchVersions]);

  return (
    <section className="req-panel" aria-labelledby="versions-title">
      <h2 id="versions-title">Dataset versions</h2>
      <div className="req-row">
        <button type="button" onClick={refresh}>
          Refresh versions and sales
        </button>
      </div>
      <ErrorNote error={loadError} />
      {versions === null ? null : versions.length === 0 ? (
        <p className="muted">No version published yet.</p>
      ) : (
        <ul className="cards">
          {versions.map((v) => (
            <VersionCard key={v.id} version={v} onChange={refresh} />
          ))}
        </ul>
      )}
      <Publish project={project} onPublished={refresh} />
    </section>
  );
}

/** What a build left out and why: items and answers by reason, and undecided items. */
function leftOut(excluded: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [what, value] of Object.entries(excluded)) {
    const name = what === "undecidedItems" ? "undecided items" : what;
    if (typeof value === "number") {
      if (value) parts.push(`${name}: ${value}`);
    } else if (value && typeof value === "object") {
      for (const [reason, n] of Object.entries(value as Record<string, unknown>)) {
        if (n) parts.push(`${name} (${reason.replace(/_/g, " ")}): ${String(n)}`);
      }
    }
  }
  return parts.length ? parts.join(" · ") : "nothing";
}

function VersionCard({ version: v, onChange }: { version: Version; onChange: () => void }) {
  const { network, requireWallet } = useSession();
  const [run, error, busy] = useAction();
  const sales = v.sales as { licences?: number; revenue?: string; pool?: string } | null | undefined;
  const progress = v.progress as { done?: number; total?: number };
  const register = () =>
    run(async () => {
      const wallet = await requireWallet();
      const reply = await api.GET("/versions/{version_id}/registration", { params: { path: { version_id: v.id } }, parseAs: "text" });
      const plan = parseBigJson<{ typed_data: { message: { deadline: number | bigint } } }>(unwrap(reply) as unknown as string);
      const typed = plan.typed_data;
      const signature = await wallet.signTypedData(plan.typed_data as never);
      unwrap(
        await api.POST("/versions/{version_id}/registration", {
          params: { path: { version_id: v.id } },
          body: { signature, deadline: typed.message.deadline } as never,
          bodySerializer: bigJson,
        }),
      );
      onChange();
    });
  const discard = () =>
    run(async () => {
      unwrap(await api.DELETE("/versions/{version_id}", { params: { path: { version_id: v.id } } }));
      onChange();
    });
  return (
    <li aria-labelledby={`version-${v.id}`}>
      <h3 id={`version-${v.id}`}>
        Version {v.version} <span className="muted">({v.status})</span>
      </h3>
      <dl className="req-facts">
        <dt>Scope</dt>
        <dd>{v.scope.replace(/_/g, " ")}</dd>
        <dt>Licence</dt>
        <dd>{v.license_spdx ?? `custom terms ${short(v.license_terms_hash)}`}</dd>
        <dt>Price</dt>
        <dd>{tokens(v.price, network)}</dd>
        <dt>Items</dt>
        <dd>{Object.entries(v.counts).map(([k, n]) => `${k.replace(/_/g, " ")}: ${n}`).join(" · ") || "—"}</dd>
        {v.status === "building" ? (
          <>
            <dt>Build</dt>
            <dd>
              <label htmlFor={`build-${v.id}`}>{v.stage}</label>
              {progress.total ? <progress id={`build-${v.id}`} max={progress.total} value={progress.done ?? 0} /> : null}
            </dd>
          </>
        ) : null}
        {v.error ? (
          <>
            <dt>Build failed</dt>
            <dd className="error">{v.error}</dd>
          </>
        ) : null}
        {v.status !== "building" ? (
          <>
            <dt>Left out</dt>
            <dd>{leftOut(v.excluded)}</dd>
          </>
        ) : null}
        <dt>Formats</dt>
        <dd>{v.formats.map((f) => String((f as { format?: string }).format ?? "")).join(", ") || "—"}</dd>
        <dt>Manifest hash</dt>
        <dd className="mono">{v.manifest_hash ?? "—"}</dd>
        {v.tx_hash ? (
          <>
            <dt>Registered in</dt>
            <dd className="mono">{v.tx_hash}</dd>
          </>
        ) : null}
        {sales ? (
          <>
            <dt>Sales</dt>
            <dd data-testid={`sales-${v.id}`}>
              {sales.licences ?? 0} licence{sales.licences === 1 ? "" : "s"}, revenue {tokens(sales.revenue ?? "0", network)}, royalty pool{" "}
              {tokens(sales.pool ?? "0", network)}
            </dd>
          </>
        ) : null}
      </dl>
      <div className="req-row">
        {v.status === "built" ? (
          <button type="button" className="primary" disabled={busy} onClick={register}>
            {busy ? "Check your wallet…" : `Sign and register version ${v.version}`}
          </button>
        ) : null}
        {v.status === "built" || v.status === "failed" ? (
          <button type="button" disabled={busy} onClick={discard}>
            Discard version {v.version}
          </button>
        ) : null}
        {v.status === "published" ? <a href={`#/datasets/${v.id}`}>See it in the catalogue</a> : null}
      </div>
      <ErrorNote error={error} />
    </li>
  );
}

function Publish({ project, onPublished }: { project: Project; onPublished: () => void }) {
  const { network } = useSession();
  const [run, error, busy] = useAction();
  const formats = FORMATS.filter(([, , types]) => types.includes(project.task_type));
  const [licence, setLicence] = useState<"spdx" | "terms">("spdx");
  return (
    <form
      className="req-form"
      aria-labelledby="publish-title"
      onSubmit={(e) => {
        e.preventDefault();
        const f = new FormData(e.currentTarget);
        run(async () => {
          const text = (name: string) => String(f.get(name) ?? "").trim();
          const chosen = formats.map(([name]) => name).filter((name) => f.get(`format-${name}`) === "on");
          if (!chosen.length) throw new Error("Formats: choose at least one export format.");
          const body: Record<string, unknown> = {
            scope: text("scope"),
            price: toBaseUnits(text("price") || "0", network, "Price"),
            formats: chosen,
            public_manifest: f.get("public_manifest") === "on",
            exclude_low_confidence: f.get("exclude_low") === "on",
          };
          if (licence === "spdx") body.license_spdx = text("spdx");
          else body.license_terms = text("terms");
          if (text("pool")) {
            const pct = Number(text("pool"));
            if (!Number.isFinite(pct) || pct < 0 || pct > 100) throw new Error("Royalty pool: a percentage from 0 to 100.");
            body.pool_bps = Math.round(pct * 100);
          }
          if (text("min_answers")) body.min_answers = Number(text("min_answers"));
          unwrap(
            await api.POST("/projects/{project_id}/versions", {
              params: { path: { project_id: project.id } },
              body: body as never,
              bodySerializer: bigJson,
            }),
          );
          onPublished();
        });
      }}
    >
      <h3 id="publish-title">Publish a new version</h3>
      <p className="req-hint">
        A version freezes the decided items with their final labels, writes the manifest and the exports, and is then registered
        on chain for sale. Items of contributors who did not consent to the scope, or who revoked consent, are left out.
      </p>
      <div className="req-grid">
        <div>
          <label htmlFor="pv-scope">Use allowed (consent scope)</label>
          <select id="pv-scope" name="scope" defaultValue="commercial_ai_training">
            {SCOPES.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="pv-price">Price ({network?.token_symbol ?? "tokens"})</label>
          <input id="pv-price" name="price" inputMode="decimal" defaultValue="10" required />
        </div>
        <div>
          <label htmlFor="pv-pool">Contributors' royalty pool (%)</label>
          <input id="pv-pool" name="pool" type="number" min={0} max={100} step="any" placeholder="platform default" />
        </div>
        <div>
          <label htmlFor="pv-min-answers">Fewest answers per item</label>
          <input id="pv-min-answers" name="min_answers" type="number" min={1} max={100} placeholder="any" />
        </div>
      </div>
      <fieldset>
        <legend>Licence</legend>
        <label className="req-check">
          <input type="radio" name="licence-kind" checked={licence === "spdx"} onChange={() => setLicence("spdx")} />
          An SPDX licence
        </label>
        <label className="req-check">
          <input type="radio" name="licence-kind" checked={licence === "terms"} onChange={() => setLicence("terms")} />
          Your own terms
        </label>
        {licence === "spdx" ? (
          <>
            <label htmlFor="pv-spdx">SPDX identifier</label>
            <input id="pv-spdx" name="spdx" defaultValue="CC-BY-4.0" required maxLength={64} />
          </>
        ) : (
          <>
            <label htmlFor="pv-terms">Licence terms</label>
            <textarea id="pv-terms" name="terms" rows={5} required maxLength={100000} />
          </>
        )}
      </fieldset>
      <fieldset>
        <legend>Export formats</legend>
        {formats.map(([name, label]) => (
          <label key={name} className="req-check">
            <input type="checkbox" name={`format-${name}`} defaultChecked />
            {label}
          </label>
        ))}
      </fieldset>
      <label className="req-check">
        <input type="checkbox" name="exclude_low" />
        Leave out items decided with low confidence
      </label>
      <label className="req-check">
        <input type="checkbox" name="public_manifest" />
        Anyone may download the manifest (for audits), not only licence holders
      </label>
      <div className="req-row">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Publishing…" : "Publish version"}
        </button>
      </div>
      <ErrorNote error={error} />
    </form>
  );
}
