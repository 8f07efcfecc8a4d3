// The auditor's page: a version's manifest checked in this browser against the chain, by the
// JavaScript verifier (frontend/verifier). Only the manifest's bytes come from our server (or
// from the auditor's own file); every other fact is read from the chain's RPC endpoint.
import { useEffect, useRef, useState, type DragEvent } from "react";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorNote, useAction } from "../../errors";
import { go } from "../../router";
import { useSession } from "../../session";
import { ChecksTable, type CheckRow } from "./Checks";
import type { FromWorker } from "./verify.worker";
import "./auditor.css";

type Version = components["schemas"]["VersionPublic"];

interface Report {
  ok: boolean;
  versionId: string | null;
  manifestHash: string | null;
  firstFailure: { check: string; fact: string } | null;
  checks: CheckRow[];
  timings: Record<string, number>;
}

interface Run {
  source: string;
  size: number;
  progress: Record<string, [number, number]>;
  chain: { method: string; calls: number } | null;
  report: Report | null;
}

const PHASES: Record<string, string> = { answers: "Answers hashed and proved", consents: "Consents read from the chain" };

export default function Auditor({ route }: { route: string[] }) {
  const { network } = useSession();
  const [versions, setVersions] = useState<Version[] | null>(null);
  const [picked, setPicked] = useState<string>(route[0] ?? "");
  const [over, setOver] = useState(false);
  const [current, setCurrent] = useState<Run | null>(null);
  const [load, loadError] = useAction();
  const [run, runError, busy, setRunError] = useAction();
  const worker = useRef<Worker | null>(null);

  useEffect(() => {
    load(async () => setVersions(unwrap(await api.GET("/versions", { params: { query: { limit: 200 } } }))));
    return () => worker.current?.terminate();
  }, [load]);

  useEffect(() => {
    if (route[0]) setPicked(route[0]);
  }, [route]);

  const verify = (bytes: ArrayBuffer, source: string) =>
    run(async () => {
      if (!network) throw new Error("The chain's RPC URL is not known yet (GET /network did not answer); reload the page.");
      worker.current?.terminate();
      setCurrent({ source, size: bytes.byteLength, progress: {}, chain: null, report: null });
      const report = await new Promise<Report>((resolve, reject) => {
        const w = new Worker(new URL("./verify.worker.ts", import.meta.url), { type: "module" });
        worker.current = w;
        w.onmessage = (event: MessageEvent<FromWorker>) => {
          const m = event.data;
          if (m.kind === "progress") {
            setCurrent((c) => c && { ...c, progress: { ...c.progress, [m.what]: [m.done, m.total] } });
          } else if (m.kind === "rpc") {
            setCurrent((c) => c && { ...c, chain: { method: m.method, calls: m.calls } });
          } else if (m.kind === "report") {
            resolve(m.report as Report);
          } else {
            reject(new Error(`The verifier stopped: ${m.message}`));
          }
        };
        w.onerror = (event) => {
          event.preventDefault();
          reject(new Error(`The verifier could not run in this browser: ${event.message || "its script failed to load"}`));
        };
        w.postMessage({ bytes, rpcUrl: network.rpc_url }, [bytes]);
      }).finally(() => {
        worker.current?.terminate();
        worker.current = null;
      });
      setCurrent((c) => c && { ...c, report });
    });

  const verifyVersion = () =>
    run(async () => {
      const version = versions?.find((v) => String(v.id) === picked);
      if (!version) throw new Error("Pick a published version first.");
      const reply = await api.GET("/versions/{version_id}/manifest", {
        params: { path: { version_id: version.id } },
        parseAs: "arrayBuffer",
      });
      const bytes = unwrap(reply) as ArrayBuffer;
      await verify(bytes, `${version.title} v${version.version} (the manifest served for version ${version.id})`);
    });

  const verifyFile = (file: File | undefined) => {
    if (!file) return;
    setRunError(null);
    void file.arrayBuffer().then(
      (bytes) => verify(bytes, file.name),
      (error: unknown) => setRunError(`Could not read ${file.name}: ${String(error)}`),
    );
  };

  const onDrop = (event: DragEvent<HTMLDivElement>) => {
    event.preventDefault();
    setOver(false);
    verifyFile(event.dataTransfer.files[0]);
  };

  const report = current?.report ?? null;
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Verify a dataset version</h1>
      <p>
        Your browser checks a version's manifest against the chain itself: the labels and their Merkle trees, every
        answer's hash and proof, the anchored batches, each contributor's consent and the registered version. It
        trusts nothing from this site but the manifest's bytes, which you can also bring yourself.
      </p>
      <p className="muted">
        Chain: <span className="mono">{network ? `${network.rpc_url} (chain ${network.chain_id})` : "loading…"}</span>
      </p>

      <h2>A published version</h2>
      <ErrorNote error={loadError} />
      <div className="row">
        <div>
          <label htmlFor="audit-version">Version</label>
          <select
            id="audit-version"
            value={picked}
            onChange={(e) => {
              setPicked(e.target.value);
              if (e.target.value) go("audit", e.target.value);
            }}
          >
            <option value="">{versions === null ? "Loading…" : versions.length ? "Choose a version" : "No version is published yet"}</option>
            {versions?.map((v) => (
              <option key={v.id} value={String(v.id)}>
                {v.title} v{v.version} — {v.scope}
                {v.public_manifest ? ", public manifest" : ", manifest for licence holders"}
              </option>
            ))}
          </select>
        </div>
        <button type="button" className="primary" disabled={busy || !picked} onClick={verifyVersion}>
          Verify this version
        </button>
      </div>

      <h2>A manifest file</h2>
      <div
        className={over ? "dropzone over" : "dropzone"}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        <p>Drop a manifest (the JSON file exactly as published) here, or choose it.</p>
        <label htmlFor="audit-file">Manifest file</label>
        <input
          id="audit-file"
          type="file"
          accept=".json,application/json"
          disabled={busy}
          onChange={(e) => {
            verifyFile(e.target.files?.[0]);
            e.target.value = ""; // the same file can be checked again
          }}
        />
      </div>

      <ErrorNote error={runError} />
      {current ? (
        <section aria-labelledby="audit-run" aria-busy={busy}>
          <h2 id="audit-run">Checking {current.source}</h2>
          <p className="muted">{current.size.toLocaleString()} bytes</p>
          <ul aria-live="polite">
            <li>{report || !busy ? "Manifest read and hashed" : "Reading the manifest…"}</li>
            {Object.entries(current.progress).map(([what, [done, total]]) => (
              <li key={what}>
                {PHASES[what] ?? what}: {done.toLocaleString()} of {total.toLocaleString()}
              </li>
            ))}
            {current.chain ? (
              <li>
                Chain reads: {current.chain.calls}
                {report ? "" : <span className="muted"> (now {current.chain.method})</span>}
              </li>
            ) : null}
          </ul>
          {report ? <Verdict report={report} /> : busy ? <p aria-busy="true">Verifying…</p> : null}
        </section>
      ) : null}
    </section>
  );
}

function Verdict({ report }: { report: Report }) {
  const passed = report.checks.filter((c) => c.status === "ok").length;
  return (
    <>
      {report.ok ? (
        <p role="status" className="verdict passed">
          Verified: all {report.checks.length} checks hold for version {report.versionId ?? "?"}.
        </p>
      ) : (
        <div role="alert" className="verdict refused">
          <strong>Not verified.</strong> {report.firstFailure?.check} failed:
          <span className="fact">{report.firstFailure?.fact}</span>
        </div>
      )}
      {report.manifestHash ? (
        <p>
          Manifest hash (keccak256): <span className="mono">{report.manifestHash}</span>
        </p>
      ) : null}
      <ChecksTable
        checks={report.checks}
        caption={`${passed} of ${report.checks.length} checks passed${
          report.timings.chain_calls ? `, ${report.timings.chain_calls} chain reads` : ""
        }`}
      />
    </>
  );
}
