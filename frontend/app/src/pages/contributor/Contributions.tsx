// Each answer the contributor gave: its state and why, where it was anchored, which dataset
// versions hold it and what it earned; and which versions each of their consents covers.
import { useCallback, useEffect, useState } from "react";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorNote, useAction } from "../../errors";
import { ProofCheck } from "./ProofCheck";
import { Scroll, short, useAmount, when } from "./shared";

type Page = components["schemas"]["ContributionsPage"];
type ConsentUse = components["schemas"]["ConsentUse"];

const PAGE = 20;

export function ContributionsPage() {
  const [projectId, setProjectId] = useState<number | null>(null);
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<Page | null>(null);
  const [run, error, busy] = useAction();
  const amount = useAmount(page?.projects.map((p) => p.reward_token) ?? []);

  const load = useCallback(
    () =>
      run(async () => {
        const query = { limit: PAGE, offset, ...(projectId === null ? {} : { project_id: projectId }) };
        setPage(unwrap(await api.GET("/me/contributions", { params: { query } })));
      }),
    [run, offset, projectId],
  );
  useEffect(() => {
    load();
  }, [load]);

  return (
    <section aria-labelledby="contrib-title">
      <h2 id="contrib-title">Your contributions</h2>
      <ErrorNote error={error} />
      {page === null ? (
        <p aria-busy="true">Loading your contributions…</p>
      ) : (
        <>
          {page.projects.length > 0 ? (
            <Scroll label="Totals per project">
              <table>
                <caption>Per project</caption>
                <thead>
                  <tr>
                    <th scope="col">Project</th>
                    <th scope="col">Answers</th>
                    <th scope="col">Accepted</th>
                    <th scope="col">Rejected</th>
                    <th scope="col">Rewards earned</th>
                    <th scope="col">Royalties earned</th>
                    <th scope="col">Proofs</th>
                  </tr>
                </thead>
                <tbody>
                  {page.projects.map((p) => (
                    <tr key={p.project_id}>
                      <td>
                        <a href={`#/contribute/${p.project_id}`}>{p.title}</a>
                      </td>
                      <td>{p.answers}</td>
                      <td>{p.accepted}</td>
                      <td>{p.rejected}</td>
                      <td>{amount(p.reward_earned, p.reward_token)}</td>
                      <td>{amount(p.royalties_earned)}</td>
                      <td>
                        <ExportButton projectId={p.project_id} title={p.title} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Scroll>
          ) : null}
          <DatasetsHolding page={page} amount={amount} />
          <div className="filters">
            <label htmlFor="contrib-project">Project</label>
            <select
              id="contrib-project"
              value={projectId ?? ""}
              onChange={(e) => {
                setOffset(0);
                setProjectId(e.target.value ? Number(e.target.value) : null);
              }}
            >
              <option value="">All projects</option>
              {page.projects.map((p) => (
                <option key={p.project_id} value={p.project_id}>
                  {p.title}
                </option>
              ))}
            </select>
          </div>
          {page.contributions.length === 0 ? (
            <p>No contributions yet.</p>
          ) : (
            <Scroll label="Your answers">
              <table>
                <caption>
                  Answers {page.offset + 1}–{page.offset + page.contributions.length} of {page.total}
                </caption>
                <thead>
                  <tr>
                    <th scope="col">Answer</th>
                    <th scope="col">Project</th>
                    <th scope="col">Submitted</th>
                    <th scope="col">State</th>
                    <th scope="col">Reward</th>
                    <th scope="col">Anchored</th>
                    <th scope="col">In datasets</th>
                  </tr>
                </thead>
                <tbody>
                  {page.contributions.map((c) => (
                    <tr key={c.answer_id}>
                      <td>
                        #{c.answer_id}
                        <div className="mono muted" title={c.leaf_hash}>
                          leaf {short(c.leaf_hash)}
                        </div>
                      </td>
                      <td>{page.projects.find((p) => p.project_id === c.project_id)?.title ?? c.project_id}</td>
                      <td>{when(c.submitted_at)}</td>
                      <td>
                        {c.status}
                        {c.status_reason ? <div className="muted">{c.status_reason}</div> : null}
                      </td>
                      <td>{amount(c.reward, page.projects.find((p) => p.project_id === c.project_id)?.reward_token)}</td>
                      <td>
                        {c.anchoring ? (
                          <>
                            batch {c.anchoring.batch_id}, {c.anchoring.status}
                            {c.anchoring.tx_hash ? (
                              <div className="mono" title={c.anchoring.tx_hash}>
                                tx {short(c.anchoring.tx_hash)}
                              </div>
                            ) : null}
                          </>
                        ) : (
                          "not yet"
                        )}
                        {c.anchoring?.status === "anchored" ? <ProofCheck answerId={c.answer_id} /> : null}
                      </td>
                      <td>
                        {c.versions.length === 0
                          ? "none yet"
                          : c.versions.map((v) => (
                              <div key={v.version_id}>
                                <a href={`#/datasets/${v.version_id}`}>version {v.number}</a>
                                {v.accepted ? "" : " (not counted)"}
                              </div>
                            ))}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Scroll>
          )}
          <nav aria-label="Pages of contributions" className="pager">
            <button type="button" disabled={busy || offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
              Previous page
            </button>
            <button type="button" disabled={busy || offset + PAGE >= page.total} onClick={() => setOffset(offset + PAGE)}>
              Next page
            </button>
          </nav>
        </>
      )}
      <ConsentUses />
    </section>
  );
}

/** Every answer of one project with its salt, leaf and Merkle proof, as a JSON file to keep:
 *  with it the contributor can check their work against the chain without this service. */
function ExportButton({ projectId, title }: { projectId: number; title: string }) {
  const [run, error, busy] = useAction();
  const download = () =>
    run(async () => {
      const r = await api.GET("/me/contributions/export", { params: { query: { project_id: projectId } }, parseAs: "blob" });
      const blob = unwrap(r) as Blob;
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = `contributions-project-${projectId}.json`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    });
  return (
    <>
      <button type="button" disabled={busy} onClick={download} aria-label={`Download (JSON): the proofs of your answers in ${title}`}>
        Download (JSON)
      </button>
      <ErrorNote error={error} />
    </>
  );
}

/** The published versions holding the contributor's work: licences sold and royalties. */
function DatasetsHolding({ page, amount }: { page: Page; amount: (u: string) => string }) {
  const rows = page.projects.flatMap((p) => p.versions.map((v) => ({ project: p.title, v })));
  if (rows.length === 0) return null;
  return (
    <Scroll label="Dataset versions holding your work">
      <table>
        <caption>Dataset versions holding your work</caption>
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">State</th>
            <th scope="col">Your answers</th>
            <th scope="col">Your weight</th>
            <th scope="col">Licences sold</th>
            <th scope="col">Royalty earned</th>
            <th scope="col">Claimed</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(({ project, v }) => (
            <tr key={v.version_id}>
              <td>
                <a href={`#/datasets/${v.version_id}`}>
                  {project}, version {v.number}
                </a>
              </td>
              <td>{v.status}</td>
              <td>{v.answers}</td>
              <td>
                {v.weight} of {v.total_weight}
              </td>
              <td>{v.licences_sold}</td>
              <td>{amount(v.earned)}</td>
              <td>{amount(v.claimed)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Scroll>
  );
}

function ConsentUses() {
  const [uses, setUses] = useState<ConsentUse[] | null>(null);
  const [run, error] = useAction();
  useEffect(() => {
    run(async () => setUses(unwrap(await api.GET("/me/consents"))));
  }, [run]);
  return (
    <>
      <h2 id="uses-title">Where your consents were used</h2>
      <ErrorNote error={error} />
      {uses === null ? (
        <p aria-busy="true">Loading…</p>
      ) : uses.length === 0 ? (
        <p>
          You have signed no consent. <a href="#/contribute/consent">Sign one</a>.
        </p>
      ) : (
        <ul className="cards" aria-labelledby="uses-title">
          {uses.map((u) => (
            <li key={u.consent.consent_hash}>
              <p>
                <strong>{u.active ? "In force" : u.consent.revocation ? "Revoked" : "Not in force"}</strong>:{" "}
                {u.consent.scopes.join(", ")}
              </p>
              <p className="mono muted" title={u.consent.consent_hash}>
                {short(u.consent.consent_hash)}
              </p>
              {u.versions.length === 0 ? (
                <p className="muted">No dataset version holds answers under it yet.</p>
              ) : (
                <ul>
                  {u.versions.map((v) => (
                    <li key={v.version_id}>
                      <a href={`#/datasets/${v.version_id}`}>
                        project {v.project_id}, version {v.number}
                      </a>
                      : {v.answers} answers, for {v.scope} ({v.status})
                    </li>
                  ))}
                </ul>
              )}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
