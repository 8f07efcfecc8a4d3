// The task loop, built for speed: one request answers a task and leases the next, the keyboard
// does everything (number keys pick a class, Enter submits), and buttons are big enough to tap.
import { lazy, Suspense, useCallback, useEffect, useState } from "react";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorNote, messageOf, useAction } from "../../errors";
import { useSession } from "../../session";
import { BoxCanvas, colorOf, useBoxes } from "./BoxEditor";
import { TASK_TYPES, type Project } from "./shared";

// Only JSON transcriptions load the form library.
const JsonAnswerForm = lazy(() => import("./JsonAnswerForm"));

type Task = components["schemas"]["TaskPublic"];
type Quality = components["schemas"]["ContributorQualityPublic"];

function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el) return false;
  const tag = el.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
}

/** Seconds left on the lease, ticking. */
function useSecondsLeft(expiresAt: string | null): number | null {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!expiresAt) return;
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, [expiresAt]);
  if (!expiresAt) return null;
  const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(expiresAt) ? expiresAt : expiresAt + "Z";
  return Math.max(0, Math.round((Date.parse(iso) - now) / 1000));
}

function clock(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return `${m}:${String(s).padStart(2, "0")}`;
}

/** The task's image, fetched with the session's token (the media URL is not public). */
function useMedia(task: Task | null): [string | null, string | null] {
  const [url, setUrl] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const taskId = task?.item.kind === "image" ? task.task_id : null;
  useEffect(() => {
    setUrl(null);
    setError(null);
    if (taskId === null) return;
    let objectUrl: string | null = null;
    let cancelled = false;
    api
      .GET("/tasks/{task_id}/media", { params: { path: { task_id: taskId } }, parseAs: "blob" })
      .then((r) => {
        const blob = unwrap(r) as Blob;
        if (cancelled) return;
        objectUrl = URL.createObjectURL(blob);
        setUrl(objectUrl);
      })
      .catch((e) => !cancelled && setError(messageOf(e)));
    return () => {
      cancelled = true;
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [taskId]);
  return [url, error];
}

export function TaskLoop({ projectId }: { projectId: number }) {
  const { address, signIn } = useSession();
  const [project, setProject] = useState<Project | null>(null);
  const [projectError, setProjectError] = useState<string | null>(null);
  const [task, setTask] = useState<Task | null>(null);
  const [done, setDone] = useState<string | null>(null); // why there is no next task
  const [answered, setAnswered] = useState(0);
  const [run, error, busy] = useAction();
  const [signInRun, signInError, signingIn] = useAction();
  const [standingTick, setStandingTick] = useState(0);

  useEffect(() => {
    api
      .GET("/projects/{project_id}", { params: { path: { project_id: projectId } } })
      .then((r) => setProject(unwrap(r)))
      .catch((e) => setProjectError(messageOf(e)));
  }, [projectId]);

  const show = useCallback((next: Task | null, why: string | null) => {
    setTask(next);
    setDone(next ? null : why);
    if (!next) setStandingTick((n) => n + 1);
  }, []);

  const fetchNext = useCallback(
    () =>
      run(async () => {
        const r = await api.POST("/projects/{project_id}/tasks/next", { params: { path: { project_id: projectId } } });
        if (r.response.status === 404) {
          show(null, (r.error as { detail?: string } | undefined)?.detail ?? "No task is left for you in this project.");
          return;
        }
        show(unwrap(r), null);
      }),
    [run, projectId, show],
  );

  useEffect(() => {
    if (address) fetchNext();
  }, [address, fetchNext]);

  const submit = useCallback(
    (answer: Record<string, unknown>) =>
      run(async () => {
        if (!task) return;
        const r = await api.POST("/tasks/{task_id}/answer-and-next", {
          params: { path: { task_id: task.task_id } },
          // Idempotent on retry: the same key returns the stored answer instead of a conflict.
          body: { answer, idempotency_key: `task-${task.task_id}` },
        });
        const result = unwrap(r);
        setAnswered((n) => n + 1);
        show(result.next ?? null, result.next_detail ?? "No task is left for you in this project.");
      }),
    [run, task, show],
  );

  // A refusal may be a stop: the standing says why.
  useEffect(() => {
    if (error) setStandingTick((n) => n + 1);
  }, [error]);

  const secondsLeft = useSecondsLeft(task?.expires_at ?? null);
  const expired = secondsLeft === 0;

  if (!address) {
    return (
      <section aria-labelledby="loop-title">
        <h2 id="loop-title">{project?.title ?? `Project ${projectId}`}</h2>
        <p>Sign in with your wallet to take tasks.</p>
        <button type="button" className="primary big" disabled={signingIn} onClick={() => signInRun(signIn)}>
          {signingIn ? "Check your wallet…" : "Sign in with your wallet"}
        </button>
        <ErrorNote error={signInError} />
      </section>
    );
  }

  const consentMissing = error !== null && /consent/i.test(error);
  return (
    <section aria-labelledby="loop-title" className="task-loop">
      <div className="loop-head">
        <h2 id="loop-title">{project?.title ?? `Project ${projectId}`}</h2>
        <p className="muted">
          {project ? TASK_TYPES[project.task_type] ?? project.task_type : null}
          {" · "}
          <span role="status">{answered} answered this session</span>
          {task && secondsLeft !== null ? (
            <>
              {" · "}
              <span className={secondsLeft < 30 ? "error-text" : undefined}>
                {expired ? "lease expired" : `${clock(secondsLeft)} left on this task`}
              </span>
            </>
          ) : null}
        </p>
      </div>
      {task ? <p className="instructions">{task.instructions}</p> : null}
      <ErrorNote error={projectError} />
      <ErrorNote error={error} />
      {consentMissing ? (
        <p>
          <a href="#/contribute/consent">Sign your consent</a> before taking tasks.
        </p>
      ) : null}
      {done ? (
        <div role="status" className="done">
          <p>{done}</p>
          <p>
            <button type="button" onClick={fetchNext} disabled={busy}>
              Look for a task again
            </button>{" "}
            <a href="#/contribute/earnings">See your earnings</a>
          </p>
        </div>
      ) : null}
      {task && expired ? (
        <p>
          The lease on this task ended; its answer would be refused.{" "}
          <button type="button" onClick={fetchNext} disabled={busy}>
            Get a new task
          </button>
        </p>
      ) : null}
      {task ? (
        // data-task-id: which task is on screen (bench/web_loop.py times its change after Enter)
        <div data-task-id={task.task_id}>
          <TaskView key={task.task_id} task={task} busy={busy || expired} saving={busy} onSubmit={submit} />
        </div>
      ) : null}
      {!task && !done && !error ? <p aria-busy="true">Getting a task…</p> : null}
      <Standing projectId={projectId} refresh={standingTick} />
      {/* Each new item read out: the loop never moves focus, so nothing else would say it. */}
      <p className="sr-only" aria-live="polite">
        {task ? (task.item.text ? `Item: ${task.item.text}` : `Image ${task.item.id}`) : ""}
      </p>
    </section>
  );
}

/** The contributor's standing in the project, and why they were stopped if they were. */
function Standing({ projectId, refresh }: { projectId: number; refresh: number }) {
  const [quality, setQuality] = useState<Quality | null>(null);
  const [run, error] = useAction();
  useEffect(() => {
    run(async () =>
      setQuality(unwrap(await api.GET("/projects/{project_id}/quality/me", { params: { path: { project_id: projectId } } }))),
    );
  }, [run, projectId, refresh]);
  if (error) return <ErrorNote error={error} />;
  if (!quality) return null;
  const percent = (v: number | null) => (v === null ? "not yet known" : `${Math.round(v * 100)}%`);
  return (
    <details className="standing" open={quality.blocked}>
      <summary>
        Your standing: {quality.blocked ? <strong className="error-text">stopped</strong> : "in good standing"}
      </summary>
      {quality.blocked ? <p className="error">You were stopped in this project: {quality.blocked_reason}</p> : null}
      <p>
        {quality.answers} answer{quality.answers === 1 ? "" : "s"}; skill {percent(quality.skill)}; gold items {quality.gold_correct} of {quality.gold_answered} right
        {quality.gold_accuracy === null ? "" : ` (${percent(quality.gold_accuracy)})`}.
      </p>
      {quality.flags.length > 0 ? (
        <ul>
          {quality.flags.map((f, i) => (
            <li key={i}>
              {f.kind}: {f.detail} ({f.answers_held} answers held)
            </li>
          ))}
        </ul>
      ) : null}
    </details>
  );
}

interface TaskProps {
  task: Task;
  busy: boolean; // no answer can be sent now (saving one, or the lease ran out)
  saving: boolean;
  onSubmit: (a: Record<string, unknown>) => void;
}

function TaskView(props: TaskProps) {
  switch (props.task.task_type) {
    case "image_bbox":
      return <BoxTask {...props} />;
    case "transcription":
      return <TranscriptionTask {...props} />;
    default:
      return <ClassifyTask {...props} />;
  }
}

function ItemText({ task }: { task: Task }) {
  return (
    <blockquote className="item-text" aria-label="The text to label">
      {task.item.text}
    </blockquote>
  );
}

function ItemImage({ task, alt }: { task: Task; alt: string }) {
  const [url, error] = useMedia(task);
  if (error) return <ErrorNote error={error} />;
  if (!url) return <p aria-busy="true">Loading the image…</p>;
  return <img className="item-image" src={url} alt={alt} />;
}

function classesOf(task: Task): string[] {
  return (task.label_schema.classes as string[] | undefined) ?? [];
}

function ClassifyTask({ task, busy, saving, onSubmit }: TaskProps) {
  const classes = classesOf(task);
  const [chosen, setChosen] = useState<string | null>(null);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
      const n = Number(e.key);
      if (Number.isInteger(n) && n >= 1 && n <= Math.min(9, classes.length)) {
        e.preventDefault();
        setChosen(classes[n - 1]);
      } else if (e.key === "Enter" && chosen !== null && !busy) {
        // Enter on a focused button would click it too: submit once, here.
        e.preventDefault();
        onSubmit({ label: chosen });
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [classes, chosen, busy, onSubmit]);

  return (
    <div className="classify">
      {task.item.kind === "image" ? <ItemImage task={task} alt="The image to classify" /> : <ItemText task={task} />}
      <div role="radiogroup" aria-label="Class" className="class-buttons">
        {classes.map((c, i) => (
          <button
            key={c}
            type="button"
            role="radio"
            aria-checked={chosen === c}
            className={chosen === c ? "class-button chosen" : "class-button"}
            onClick={() => setChosen(c)}
          >
            {i < 9 ? <kbd aria-hidden="true">{i + 1}</kbd> : null} {c}
          </button>
        ))}
      </div>
      <button type="button" className="primary big submit" disabled={busy || chosen === null} onClick={() => chosen && onSubmit({ label: chosen })}>
        {saving ? "Saving…" : "Submit"} <kbd aria-hidden="true">Enter</kbd>
      </button>
      <p className="muted shortcuts">
        Keys: <kbd>1</kbd>–<kbd>{Math.min(9, classes.length)}</kbd> pick a class, <kbd>Enter</kbd> submits and shows the next item.
      </p>
    </div>
  );
}

function TranscriptionTask({ task, busy, saving, onSubmit }: TaskProps) {
  const jsonSchema = task.label_schema.format === "json" ? task.label_schema.json_schema : null;
  const [text, setText] = useState("");
  const item = task.item.kind === "image" ? <ItemImage task={task} alt="The image to transcribe" /> : <ItemText task={task} />;
  if (jsonSchema) {
    return (
      <div className="transcribe">
        {item}
        <h3 className="answer-title">Your answer</h3>
        <Suspense fallback={<p aria-busy="true">Loading the form…</p>}>
          <JsonAnswerForm schema={jsonSchema as object} busy={busy} saving={saving} onSubmit={(data) => onSubmit({ data })} />
        </Suspense>
        <p className="muted shortcuts">
          Keys: <kbd>Ctrl</kbd>+<kbd>Enter</kbd> submits and shows the next item.
        </p>
      </div>
    );
  }
  return (
    <form
      className="transcribe"
      onSubmit={(e) => {
        e.preventDefault();
        onSubmit({ text });
      }}
    >
      {item}
      <label htmlFor="transcription">Your transcription</label>
      <textarea
        id="transcription"
        rows={6}
        value={text}
        maxLength={(task.label_schema.max_length as number | undefined) ?? undefined}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            onSubmit({ text });
          }
        }}
      />
      <button type="submit" className="primary big" disabled={busy || !text.trim()}>
        {saving ? "Saving…" : "Submit"}
      </button>
      <p className="muted shortcuts">
        Keys: <kbd>Ctrl</kbd>+<kbd>Enter</kbd> submits and shows the next item.
      </p>
    </form>
  );
}

function BoxTask({ task, busy, saving, onSubmit }: TaskProps) {
  const classes = classesOf(task);
  const [url, mediaError] = useMedia(task);
  const [size, setSize] = useState<{ w: number; h: number } | null>(
    task.item.width && task.item.height ? { w: task.item.width, h: task.item.height } : null,
  );
  const [current, setCurrent] = useState(classes[0] ?? "");
  const boxes = useBoxes(size?.w ?? 1, size?.h ?? 1);
  const { state } = boxes;
  const minBoxes = (task.label_schema.min_boxes as number | undefined) ?? 0;
  const maxBoxes = (task.label_schema.max_boxes as number | undefined) ?? 50;

  // Without the item's size in the task, the image's own pixels are the frame.
  useEffect(() => {
    if (size || !url) return;
    const img = new Image();
    img.onload = () => setSize({ w: img.naturalWidth, h: img.naturalHeight });
    img.src = url;
  }, [url, size]);

  // Without a pointer: a box in the middle, to move and size with the keys.
  const addMiddle = () => {
    if (!size) return;
    const width = Math.max(1, Math.round(size.w / 4));
    const height = Math.max(1, Math.round(size.h / 4));
    boxes.add({ label: current, x: Math.round((size.w - width) / 2), y: Math.round((size.h - height) / 2), width, height });
  };

  const submit = useCallback(() => {
    if (busy) return;
    onSubmit({ boxes: state.boxes.map(({ label, x, y, width, height }) => ({ label, x, y, width, height })) });
  }, [busy, onSubmit, state.boxes]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (isTyping(e.target)) return;
      const ctrl = e.ctrlKey || e.metaKey;
      if (ctrl && (e.key === "z" || e.key === "Z")) {
        e.preventDefault();
        boxes.undo();
        return;
      }
      const arrows: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      if (e.key in arrows && state.selected !== null) {
        e.preventDefault();
        const step = e.shiftKey ? 10 : 1;
        const [dx, dy] = arrows[e.key];
        boxes.nudge(dx * step, dy * step, ctrl);
        return;
      }
      if ((e.key === "Delete" || e.key === "Backspace") && state.selected !== null) {
        e.preventDefault();
        boxes.remove();
        return;
      }
      if (ctrl || e.altKey) return;
      const n = Number(e.key);
      if (Number.isInteger(n) && n >= 1 && n <= Math.min(9, classes.length)) {
        e.preventDefault();
        setCurrent(classes[n - 1]);
        if (state.selected !== null) boxes.relabel(classes[n - 1]);
      } else if (e.key === "n" || e.key === "N") {
        e.preventDefault();
        addMiddle();
      } else if (e.key === "Enter") {
        e.preventDefault();
        submit();
      } else if (e.key === "Escape") {
        boxes.select(null);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [boxes, classes, state.selected, submit]);

  const count = state.boxes.length;
  const countProblem =
    count < minBoxes ? `Draw at least ${minBoxes} box${minBoxes === 1 ? "" : "es"}.` : count > maxBoxes ? `At most ${maxBoxes} boxes.` : null;
  return (
    <div className="boxes-task">
      <div role="radiogroup" aria-label="Class for new boxes" className="class-buttons compact">
        {classes.map((c, i) => (
          <button
            key={c}
            type="button"
            role="radio"
            aria-checked={current === c}
            className={current === c ? "class-button chosen" : "class-button"}
            style={{ borderLeft: `8px solid ${colorOf(classes, c)}` }}
            onClick={() => {
              setCurrent(c);
              if (state.selected !== null) boxes.relabel(c);
            }}
          >
            {i < 9 ? <kbd aria-hidden="true">{i + 1}</kbd> : null} {c}
          </button>
        ))}
      </div>
      <div className="boxes-layout">
        <div>
          <ErrorNote error={mediaError} />
          {url && size ? (
            <BoxCanvas
              src={url}
              width={size.w}
              height={size.h}
              classes={classes}
              current={current}
              state={state}
              onAdd={boxes.add}
              onSelect={boxes.select}
            />
          ) : mediaError ? null : (
            <p aria-busy="true">Loading the image…</p>
          )}
        </div>
        <div className="box-side">
          <h3 id="boxes-title">Boxes ({count})</h3>
          {count === 0 ? <p className="muted">No box yet.</p> : null}
          <ol className="box-list" aria-labelledby="boxes-title">
            {state.boxes.map((b, i) => (
              <li key={i}>
                <button
                  type="button"
                  aria-pressed={state.selected === i}
                  className={state.selected === i ? "chosen" : undefined}
                  onClick={() => boxes.select(i)}
                >
                  <span className="swatch" style={{ background: colorOf(classes, b.label) }} aria-hidden="true" />
                  {b.label}: x {b.x}, y {b.y}, {b.width}×{b.height}
                </button>
              </li>
            ))}
          </ol>
          <p className="box-actions">
            <button type="button" disabled={!size} onClick={addMiddle}>
              Add a box <kbd aria-hidden="true">N</kbd>
            </button>{" "}
            <button type="button" disabled={state.selected === null} onClick={boxes.remove}>
              Delete box
            </button>{" "}
            <button type="button" onClick={boxes.undo}>
              Undo
            </button>
          </p>
          {countProblem ? <p className="muted">{countProblem}</p> : null}
          <button type="button" className="primary big submit" disabled={busy || countProblem !== null} onClick={submit}>
            {saving ? "Saving…" : "Submit"} <kbd aria-hidden="true">Enter</kbd>
          </button>
          <div className="shortcut-help">
            <h3>Shortcuts</h3>
            <ul className="shortcuts muted">
              <li>Two clicks, or a drag, draw a box (one may start inside another)</li>
              <li>
                <kbd>N</kbd> adds a box in the middle, to move and size with the keys
              </li>
              <li>
                <kbd>1</kbd>–<kbd>9</kbd> pick the class (and relabel the selected box)
              </li>
              <li>
                <kbd>←</kbd>
                <kbd>↑</kbd>
                <kbd>→</kbd>
                <kbd>↓</kbd> move the selected box 1 px, with <kbd>Shift</kbd> 10 px
              </li>
              <li>
                <kbd>Ctrl</kbd>+arrows resize it (right/down grow, left/up shrink)
              </li>
              <li>
                <kbd>Delete</kbd> removes it, <kbd>Esc</kbd> deselects, <kbd>Ctrl</kbd>+<kbd>Z</kbd> undoes
              </li>
              <li>
                <kbd>Enter</kbd> submits and shows the next image
              </li>
            </ul>
          </div>
        </div>
      </div>
    </div>
  );
}
