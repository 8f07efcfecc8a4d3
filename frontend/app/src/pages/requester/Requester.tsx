// The requester's pages: #/requester lists their projects and creates new ones;
// #/requester/<id> is one project (items, budget, quality, dataset versions).
import { useCallback, useEffect, useState } from "react";
import { api, unwrap } from "../../api/client";
import { ErrorNote, useAction } from "../../errors";
import { useSession } from "../../session";
import { NewProject } from "./NewProject";
import { ProjectPage } from "./ProjectPage";
import { Faucet } from "./Faucet";
import { taskLabel, tokens, type Project } from "./shared";
import "./requester.css";

export default function Requester({ route }: { route: string[] }) {
  const { address, signIn } = useSession();
  const [run, error, busy] = useAction();
  if (!address) {
    return (
      <section aria-labelledby="req-title">
        <h1 id="req-title">Your projects</h1>
        <p>Sign in with your wallet to create labelling projects, fund them and publish datasets.</p>
        <button type="button" className="primary" disabled={busy} onClick={() => run(signIn)}>
          {busy ? "Check your wallet…" : "Sign in to continue"}
        </button>
        <ErrorNote error={error} />
      </section>
    );
  }
  const id = route[0];
  if (id !== undefined) {
    const projectId = Number(id);
    if (!Number.isInteger(projectId) || projectId < 1) {
      return (
        <section>
          <h1>Project not found</h1>
          <p role="alert" className="error">
            “{id}” is not a project number. <a href="#/requester">Back to your projects</a>
          </p>
        </section>
      );
    }
    return <ProjectPage key={projectId} projectId={projectId} />;
  }
  return <Projects owner={address} />;
}

function Projects({ owner }: { owner: string }) {
  const { network } = useSession();
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [run, error] = useAction();
  const load = useCallback(
    () =>
      run(async () => {
        setProjects(unwrap(await api.GET("/projects", { params: { query: { owner, limit: 200 } } })));
      }),
    [run, owner],
  );
  useEffect(() => {
    load();
  }, [load]);

  return (
    <section aria-labelledby="req-title">
      <h1 id="req-title">Your projects</h1>
      <Faucet />
      <ErrorNote error={error} />
      {projects === null ? (
        <p aria-busy="true">Loading your projects…</p>
      ) : projects.length === 0 ? (
        <p className="muted">You have no project yet: create one below.</p>
      ) : (
        <div className="req-scroll" role="region" aria-label="Your projects" tabIndex={0}>
          <table>
            <caption className="visually-hidden">Your projects</caption>
            <thead>
              <tr>
                <th scope="col">Project</th>
                <th scope="col">Task</th>
                <th scope="col">Overlap</th>
                <th scope="col">Reward per answer</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {projects.map((p) => (
                <tr key={p.id}>
                  <td>
                    <a href={`#/requester/${p.id}`}>
                      #{p.id} {p.title}
                    </a>
                  </td>
                  <td>{taskLabel(p.task_type)}</td>
                  <td>{p.overlap}</td>
                  <td>{tokens(p.reward_per_answer, network)}</td>
                  <td>{new Date(p.created_at).toLocaleString()}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <NewProject />
    </section>
  );
}
