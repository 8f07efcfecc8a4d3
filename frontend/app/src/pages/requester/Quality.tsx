// Progress and quality: answers by status, agreement, gold accuracy, contributors stopped or
// flagged (with the evidence), items set aside, and the final labels.
import { useCallback, useEffect, useState } from "react";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorNote, useAction } from "../../errors";
import { percent, short, type Project } from "./shared";

type Report = components["schemas"]["QualityReport"];
type Result = components["schemas"]["ItemResultPublic"];

function Counts({ label, counts, skipZero = false }: { label: string; counts: Record<string, number>; skipZero?: boolean }) {
  const entries = Object.entries(counts).filter(([, n]) => !skipZero || n > 0);
  return (
    <>
      <dt>{label}</dt>
      <dd>{entries.length ? entries.map(([k, v]) => `${k.replace(/_/g, " ")}: ${v}`).join(" · ") : "none yet"}</dd>
    </>
  );
}

export function Quality({ project }: { project: Project }) {
  const [report, setReport] = useState<Report | null>(null);
  const [results, setResults] = useState<Result[] | null>(null);
  const [names, setNames] = useState<Map<number, string>>(new Map());
  const [run, error, busy] = useAction();
  const load = useCallback(
    () =>
      run(async () => {
        const path = { params: { path: { project_id: project.id } } };
        const [q, r, i] = await Promise.all([
          api.GET("/projects/{project_id}/quality", path),
          api.GET("/projects/{project_id}/results", path),
          // The first page of items, to name the decided ones (your id, or the text's start).
          api.GET("/projects/{project_id}/items", { params: { path: { project_id: project.id }, query: { limit: 1000 } } }),
        ]);
        setReport(unwrap(q));
        setResults(unwrap(r));
        const items = unwrap(i);
        setNames(new Map(items.map((it) => [it.id, it.external_id ?? (it.text ? (it.text.length > 60 ? `${it.text.slice(0, 60)}…` : it.text) : "")])));
      }),
    [run, project.id],
  );
  useEffect(() => {
    load();
  }, [load]);

  return (
    <section className="req-panel" aria-labelledby="quality-title">
      <h2 id="quality-title">Progress and quality</h2>
      <div className="req-row">
        <button type="button" onClick={load} disabled={busy}>
          {busy ? "Refreshing…" : "Refresh progress"}
        </button>
      </div>
      <ErrorNote error={error} />
      {report ? (
        <>
          <dl className="req-facts" aria-label="Quality summary">
            <Counts label="Items" counts={report.items} />
            <Counts label="Answers" counts={report.answers} />
            <dt>Aggregation</dt>
            <dd>{report.method ?? "not run yet"}</dd>
            <dt>Agreement (Krippendorff's α)</dt>
            <dd>{report.krippendorff_alpha === null ? "—" : report.krippendorff_alpha.toFixed(3)}</dd>
            <Counts label="Gold accuracy (contributors per band)" counts={report.gold_accuracy_histogram} skipZero />
          </dl>
          <h3>Contributors</h3>
          {report.contributors.length === 0 ? (
            <p className="muted">Nobody has answered yet.</p>
          ) : (
            <div className="req-scroll" role="region" aria-label="Contributors' standing" tabIndex={0}>
              <table>
                <caption className="visually-hidden">Contributors' standing</caption>
                <thead>
                  <tr>
                    <th scope="col">Contributor</th>
                    <th scope="col">Answers</th>
                    <th scope="col">Gold correct</th>
                    <th scope="col">Gold accuracy</th>
                    <th scope="col">Skill</th>
                    <th scope="col">Standing</th>
                  </tr>
                </thead>
                <tbody>
                  {report.contributors.map((c) => (
                    <tr key={c.contributor}>
                      <td className="mono" title={c.contributor}>
                        {short(c.contributor)}
                      </td>
                      <td>{c.answers}</td>
                      <td>
                        {c.gold_correct} / {c.gold_answered}
                      </td>
                      <td>{percent(c.gold_accuracy)}</td>
                      <td>{c.skill === null ? "—" : c.skill.toFixed(2)}</td>
                      <td>{c.blocked ? `stopped: ${c.blocked_reason ?? ""}` : c.flags.length ? "flagged" : "ok"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <h3>Flagged contributors</h3>
          {report.flagged.length === 0 ? (
            <p className="muted">No fraud flags.</p>
          ) : (
            <div className="req-scroll" role="region" aria-label="Fraud flags and their evidence" tabIndex={0}>
              <table>
                <caption className="visually-hidden">Fraud flags and their evidence</caption>
                <thead>
                  <tr>
                    <th scope="col">Contributor</th>
                    <th scope="col">Flag</th>
                    <th scope="col">Evidence</th>
                    <th scope="col">Answers held (unpaid)</th>
                  </tr>
                </thead>
                <tbody>
                  {report.flagged.map((f) => (
                    <tr key={`${f.contributor}-${f.kind}`}>
                      <td className="mono" title={f.contributor}>
                        {short(f.contributor)}
                      </td>
                      <td>{f.kind.replace(/_/g, " ")}</td>
                      <td>{f.detail}</td>
                      <td>{f.answers_held}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {report.set_aside?.length ? (
            <>
              <h3>Items set aside</h3>
              <ul>
                {report.set_aside.map((s) => (
                  <li key={s.item_id}>
                    Item {s.item_id}
                    {s.external_id ? ` (${s.external_id})` : ""}, {s.answers} answers: {s.reason}
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </>
      ) : null}
      <h3>Final labels</h3>
      {results === null ? null : results.length === 0 ? (
        <p className="muted">No item is decided yet.</p>
      ) : (
        <div className="req-scroll" role="region" aria-label="Final labels of decided items" tabIndex={0}>
          <table>
            <caption className="visually-hidden">Final labels of decided items</caption>
            <thead>
              <tr>
                <th scope="col">Item</th>
                <th scope="col">Consensus</th>
                <th scope="col">Confidence</th>
                <th scope="col">Answers</th>
                <th scope="col">Method</th>
              </tr>
            </thead>
            <tbody>
              {results.map((r) => (
                <tr key={r.item_id}>
                  <td>
                    {r.item_id}
                    {names.get(r.item_id) ? <div className="muted">{names.get(r.item_id)}</div> : null}
                  </td>
                  <td>
                    <pre className="req-json">{JSON.stringify(r.consensus)}</pre>
                  </td>
                  <td>
                    {percent(r.confidence)}
                    {r.low_confidence ? " (low)" : ""}
                  </td>
                  <td>{r.n_answers}</td>
                  <td>{r.method}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
