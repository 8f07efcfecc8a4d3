// One published version: its terms, where its labels came from, the platform's verification
// report, a preview with Merkle proofs checked here, the licence bought from the wallet and
// the downloads it opens.
import { useCallback, useEffect, useState } from "react";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorNote, useAction } from "../../errors";
import { useSession } from "../../session";
import { ChecksTable } from "../auditor/Checks";
import { Downloads } from "./Downloads";
import { tokens } from "./format";
import { Licence } from "./Licence";
import { Preview } from "./Preview";

type Version = components["schemas"]["VersionPublic"];
type Provenance = components["schemas"]["ProvenanceSummary"];
type Verification = components["schemas"]["VerificationPublic"];

export function VersionPage({ versionId }: { versionId: number }) {
  const { network, address } = useSession();
  const [version, setVersion] = useState<Version | null>(null);
  const [provenance, setProvenance] = useState<Provenance | null>(null);
  const [verification, setVerification] = useState<Verification | null>(null);
  const [held, setHeld] = useState<boolean | null>(null);
  const [load, error] = useAction();
  const [loadMine, mineError] = useAction();

  useEffect(() => {
    load(async () => {
      const path = { params: { path: { version_id: versionId } } };
      const [v, p, r] = await Promise.all([
        api.GET("/versions/{version_id}", path),
        api.GET("/versions/{version_id}/provenance", path),
        api.GET("/versions/{version_id}/verification", path),
      ]);
      setVersion(unwrap(v));
      setProvenance(unwrap(p));
      setVerification(unwrap(r));
    });
  }, [load, versionId, address]);

  const refreshLicences = useCallback(async () => {
    if (!address) return false;
    const mine = unwrap(await api.GET("/me/licences"));
    const has = mine.some((v) => v.id === versionId);
    setHeld(has);
    return has;
  }, [address, versionId]);

  useEffect(() => {
    setHeld(null);
    if (address) loadMine(async () => void (await refreshLicences()));
  }, [address, loadMine, refreshLicences]);

  if (!version) {
    return (
      <section aria-labelledby="version-title" className="buyer-page">
        <h1 id="version-title">Dataset version {versionId}</h1>
        <ErrorNote error={error} />
        {error ? null : <p aria-busy="true">Loading…</p>}
        <p>
          <a href="#/datasets">All datasets</a>
        </p>
      </section>
    );
  }
  const isRequester = version.sales != null; // the service shows sales to the requester only
  return (
    <section aria-labelledby="version-title" className="buyer-page">
      <p>
        <a href="#/datasets">All datasets</a>
      </p>
      <h1 id="version-title">
        {version.title} v{version.version}
      </h1>
      <ErrorNote error={error} />
      <dl className="facts">
        <dt>Use</dt>
        <dd>{version.scope.replaceAll("_", " ")}</dd>
        <dt>Licence</dt>
        <dd>{version.license_spdx ?? "terms by hash only"}</dd>
        <dt>Price</dt>
        <dd>{tokens(version.price, network)}</dd>
        <dt>Contents</dt>
        <dd>
          {version.counts.items ?? 0} items labelled from {version.counts.answers ?? 0} answers by{" "}
          {version.counts.contributors ?? 0} contributors ({version.task_type})
        </dd>
        <dt>Published</dt>
        <dd>{new Date(version.published_at).toLocaleString()}</dd>
        <dt>Manifest hash</dt>
        <dd className="mono">{version.manifest_hash ?? "—"}</dd>
        <dt>Item root</dt>
        <dd className="mono">{version.item_root ?? "—"}</dd>
        <dt>On chain</dt>
        <dd className="mono">
          version {version.chain_version_id}
          {version.tx_hash ? `, registered in ${version.tx_hash}` : ""}
        </dd>
      </dl>

      <h2>Licence</h2>
      <ErrorNote error={mineError} />
      {isRequester ? (
        <p>This is your project's version: you can download it without a licence.</p>
      ) : held ? (
        <p className="ok" role="status">
          You hold a licence for this version.
        </p>
      ) : (
        <Licence version={version} onLicensed={refreshLicences} />
      )}
      {held || isRequester ? <Downloads version={version} /> : null}

      {provenance ? <ProvenanceView provenance={provenance} /> : null}
      {verification ? <VerificationView verification={verification} versionId={version.id} /> : null}
      <Preview version={version} />
    </section>
  );
}

function ProvenanceView({ provenance }: { provenance: Provenance }) {
  const excluded = Object.entries(provenance.excluded).flatMap(([what, reasons]) =>
    reasons && typeof reasons === "object"
      ? Object.entries(reasons as Record<string, number>).map(([why, n]) => `${n} ${what} (${why.replaceAll("_", " ")})`)
      : [`${what}: ${String(reasons)}`],
  );
  return (
    <>
      <h2>Provenance</h2>
      <p>
        Labelled by the <span className="mono">{String(provenance.method.name ?? "")}</span> rule, for{" "}
        {provenance.scope.replaceAll("_", " ")}. Left out: {excluded.length ? excluded.join(", ") : "nothing"}.
      </p>
      <p>
        Consents covering each use:{" "}
        {Object.entries(provenance.consent_coverage)
          .map(([scope, n]) => `${scope.replaceAll("_", " ")}: ${n} contributors`)
          .join("; ") || "none"}
      </p>
      <table>
        <caption>Contributors (by pseudonym)</caption>
        <thead>
          <tr>
            <th scope="col">Contributor</th>
            <th scope="col">Answers</th>
            <th scope="col">Weight</th>
            <th scope="col">Consented to</th>
          </tr>
        </thead>
        <tbody>
          {provenance.contributors.map((c) => (
            <tr key={c.pseudonym}>
              <td className="mono">{c.pseudonym}</td>
              <td>{c.answers}</td>
              <td>{c.weight}</td>
              <td>{c.consent_scopes.map((s) => s.replaceAll("_", " ")).join(", ")}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <table>
        <caption>Batches anchoring the answers on chain</caption>
        <thead>
          <tr>
            <th scope="col">Batch</th>
            <th scope="col">Answers</th>
            <th scope="col">Merkle root</th>
            <th scope="col">Transaction</th>
          </tr>
        </thead>
        <tbody>
          {provenance.batches.map((b) => (
            <tr key={b.batch_id}>
              <td>{b.batch_id}</td>
              <td>{b.answers}</td>
              <td className="mono">{b.root}</td>
              <td className="mono">{b.tx_hash ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

const VERDICTS: Record<string, string> = {
  verified: "Verified: every check held when the platform last ran provenant verify.",
  failed: "The platform's last verification FAILED.",
  pending: "Not verified yet: the platform's verifier has not run on this version.",
};

function VerificationView({ verification, versionId }: { verification: Verification; versionId: number }) {
  return (
    <>
      <h2>Verification</h2>
      <p className={verification.status === "failed" ? "error" : verification.status === "verified" ? "ok" : "muted"}>
        {VERDICTS[verification.status] ?? verification.status}
        {verification.checked_at ? ` (${new Date(verification.checked_at).toLocaleString()})` : ""}
        {verification.first_failure ? ` ${verification.first_failure}` : ""}
      </p>
      <p>
        Don't take our word for it: <a href={`#/audit/${versionId}`}>verify this version in your browser</a> against
        the chain.
      </p>
      {verification.checks.length ? (
        <ChecksTable checks={verification.checks} caption="The platform's checks" />
      ) : null}
    </>
  );
}
