// One project as its requester sees it: terms, items, budget, quality and dataset versions.
import { useCallback, useEffect, useState } from "react";
import { api, unwrap } from "../../api/client";
import { ErrorNote, useAction } from "../../errors";
import { useSession } from "../../session";
import { Budget } from "./Budget";
import { Items } from "./Items";
import { Quality } from "./Quality";
import { Versions } from "./Versions";
import { percent, taskLabel, tokens, type Project } from "./shared";

export function ProjectPage({ projectId }: { projectId: number }) {
  const { network, address } = useSession();
  const [project, setProject] = useState<Project | null>(null);
  const [itemCount, setItemCount] = useState(0);
  const [run, error] = useAction();
  const load = useCallback(
    () =>
      run(async () => {
        setProject(unwrap(await api.GET("/projects/{project_id}", { params: { path: { project_id: projectId } } })));
      }),
    [run, projectId],
  );
  useEffect(() => {
    load();
  }, [load]);

  if (!project) {
    return (
      <section aria-labelledby="project-title">
        <h1 id="project-title">Project #{projectId}</h1>
        <p>
          <a href="#/requester">← Your projects</a>
        </p>
        {error ? <ErrorNote error={error} /> : <p aria-busy="true">Loading…</p>}
      </section>
    );
  }
  const mine = address !== null && project.owner.toLowerCase() === address.toLowerCase();
  const schema = project.label_schema as { classes?: string[]; format?: string; max_length?: number; min_boxes?: number; max_boxes?: number };
  return (
    <section aria-labelledby="project-title">
      <p>
        <a href="#/requester">← Your projects</a>
      </p>
      <h1 id="project-title">
        #{project.id} {project.title}
      </h1>
      <dl className="req-facts">
        <dt>Task</dt>
        <dd>{taskLabel(project.task_type)}</dd>
        <dt>Labels</dt>
        <dd>
          {schema.classes
            ? schema.classes.join(", ")
            : schema.format === "json"
              ? "JSON matching the project's JSON Schema"
              : `free text, up to ${schema.max_length} characters`}
          {project.task_type === "image_bbox" ? ` (${schema.min_boxes}–${schema.max_boxes} boxes per image)` : null}
        </dd>
        <dt>Answers per item</dt>
        <dd>{project.overlap}</dd>
        <dt>Reward per accepted answer</dt>
        <dd>{tokens(project.reward_per_answer, network)}</dd>
        <dt>Gold items</dt>
        <dd>
          {percent(project.gold_rate)} of tasks
          {BigInt(project.gold_bonus) > 0n ? `, bonus ${tokens(project.gold_bonus, network)}` : null}
        </dd>
        <dt>Lease</dt>
        <dd>{project.lease_seconds} s</dd>
        <dt>Instructions</dt>
        <dd style={{ whiteSpace: "pre-wrap" }}>{project.instructions}</dd>
      </dl>
      {!mine ? (
        <p role="alert" className="error">
          This project belongs to {project.owner}; only its requester manages it.
        </p>
      ) : (
        <>
          <Items project={project} onCount={setItemCount} />
          <Budget project={project} itemCount={itemCount} />
          <Quality project={project} />
          <Versions project={project} />
        </>
      )}
    </section>
  );
}
