// The buyer's pages: the catalogue of published versions with the buyer's licences and
// notices (#/datasets), and one version to inspect, preview, license and download
// (#/datasets/{id}).
import { useEffect, useState } from "react";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorNote, useAction } from "../../errors";
import { useSession } from "../../session";
import { tokens } from "./format";
import { VersionPage } from "./Version";
import "./buyer.css";

type Version = components["schemas"]["VersionPublic"];
type Notice = components["schemas"]["Notice"];

export default function Buyer({ route }: { route: string[] }) {
  const id = Number(route[0]);
  if (route[0] && Number.isInteger(id) && id > 0) return <VersionPage key={id} versionId={id} />;
  return <Catalogue />;
}

function Catalogue() {
  const { network, address } = useSession();
  const [versions, setVersions] = useState<Version[] | null>(null);
  const [load, error] = useAction();

  useEffect(() => {
    load(async () => setVersions(unwrap(await api.GET("/versions", { params: { query: { limit: 200 } } }))));
  }, [load]);

  return (
    <section aria-labelledby="datasets-title" className="buyer-page">
      <h1 id="datasets-title">Datasets</h1>
      <p>
        Published dataset versions. Each one comes with where its labels came from, a preview whose Merkle proofs you
        can check, and a manifest anyone can verify against the chain.
      </p>
      {address ? <Mine /> : <p className="muted">Sign in with your wallet to see your licences and notices.</p>}
      <h2>Published versions</h2>
      <ErrorNote error={error} />
      {versions === null ? (
        <p aria-busy="true">Loading…</p>
      ) : versions.length === 0 ? (
        <p>No version is published yet.</p>
      ) : (
        <ul className="cards">
          {versions.map((v) => (
            <li key={v.id}>
              <h3>
                <a href={`#/datasets/${v.id}`}>
                  {v.title} v{v.version}
                </a>
              </h3>
              <p>
                {v.task_type}, for {v.scope.replaceAll("_", " ")}
                {v.license_spdx ? `, ${v.license_spdx}` : ""}
              </p>
              <p>
                {v.counts.items ?? 0} items, {v.counts.answers ?? 0} answers by {v.counts.contributors ?? 0} contributors
              </p>
              <p>
                <strong>{tokens(v.price, network)}</strong>
                <span className="muted"> · published {new Date(v.published_at).toLocaleDateString()}</span>
              </p>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Mine() {
  const { address } = useSession();
  const [licences, setLicences] = useState<Version[] | null>(null);
  const [notices, setNotices] = useState<Notice[] | null>(null);
  const [load, error] = useAction();

  useEffect(() => {
    load(async () => {
      const [l, n] = await Promise.all([api.GET("/me/licences"), api.GET("/me/notices")]);
      setLicences(unwrap(l));
      setNotices(unwrap(n));
    });
  }, [load, address]);

  return (
    <>
      <h2>Your licences</h2>
      <ErrorNote error={error} />
      {licences === null ? null : licences.length === 0 ? (
        <p className="muted">You hold no licence yet.</p>
      ) : (
        <ul aria-label="Your licences">
          {licences.map((v) => (
            <li key={v.id}>
              <a href={`#/datasets/${v.id}`}>
                {v.title} v{v.version}
              </a>{" "}
              <span className="muted">({v.scope.replaceAll("_", " ")})</span>
            </li>
          ))}
        </ul>
      )}
      <h2>Notices</h2>
      {notices === null ? null : notices.length === 0 ? (
        <p className="muted">No notice: no contributor has revoked consent since you licensed.</p>
      ) : (
        <ul aria-label="Notices">
          {notices.map((n) => (
            <li key={`${n.version_id}-${n.consent_hash}`}>
              <a href={`#/datasets/${n.version_id}`}>Version {n.version}</a>: {n.message}
              {n.revoked_at ? <span className="muted"> (revoked {new Date(n.revoked_at).toLocaleString()})</span> : null}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
