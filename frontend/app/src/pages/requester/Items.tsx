// Items: images by drag and drop or file picker (sent 20 to a request, the API's limit, with
// progress per request), text items as a JSONL or CSV file, gold answers with either, and the
// list of what is stored.
import { useCallback, useEffect, useRef, useState, type DragEvent } from "react";
import { api, unwrap } from "../../api/client";
import { ErrorNote, useAction } from "../../errors";
import { isImageTask, type Item, type Project } from "./shared";

const PER_REQUEST = 20; // backend/projects/router.py IMAGES_PER_UPLOAD
const PAGE = 100;
const IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp"];

type UploadResult = { created: number; duplicates: number };

export function Items({ project, onCount }: { project: Project; onCount: (n: number) => void }) {
  const [items, setItems] = useState<Item[]>([]);
  const [more, setMore] = useState(false);
  const [run, error] = useAction();
  const load = useCallback(
    (offset = 0) =>
      run(async () => {
        const page = unwrap(
          await api.GET("/projects/{project_id}/items", {
            params: { path: { project_id: project.id }, query: { offset, limit: PAGE } },
          }),
        );
        setItems((old) => (offset === 0 ? page : [...old, ...page]));
        setMore(page.length === PAGE);
      }),
    [run, project.id],
  );
  useEffect(() => {
    load();
  }, [load]);
  useEffect(() => onCount(items.length), [items, onCount]);

  return (
    <section className="req-panel" aria-labelledby="items-title">
      <h2 id="items-title">Items</h2>
      {isImageTask(project.task_type) ? (
        <ImageUpload project={project} onUploaded={() => load()} />
      ) : (
        <TextUpload project={project} onUploaded={() => load()} />
      )}
      <h3>Stored items ({items.length}{more ? "+" : ""})</h3>
      <ErrorNote error={error} />
      {items.length === 0 ? (
        <p className="muted">No items yet.</p>
      ) : (
        <div className="req-scroll" role="region" aria-label="The project's items" tabIndex={0}>
          <table>
            <caption className="visually-hidden">The project's items</caption>
            <thead>
              <tr>
                <th scope="col">Item</th>
                <th scope="col">Your id / file</th>
                <th scope="col">Content</th>
                <th scope="col">Gold answer</th>
                <th scope="col">Answers</th>
              </tr>
            </thead>
            <tbody>
              {items.map((item) => (
                <tr key={item.id}>
                  <td>{item.id}</td>
                  <td>{item.external_id ?? "—"}</td>
                  <td>
                    {item.kind === "image" ? (
                      <span>
                        {item.mime_type} {item.width}×{item.height}
                      </span>
                    ) : (
                      <span>{(item.text ?? "").length > 140 ? `${item.text!.slice(0, 140)}…` : item.text}</span>
                    )}
                    <div className="mono muted" title={item.content_hash}>
                      {item.content_hash.slice(0, 18)}…
                    </div>
                  </td>
                  <td>{item.is_gold ? <code>{JSON.stringify(item.gold_answer)}</code> : "—"}</td>
                  <td>{item.answer_count}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {more ? (
        <div className="req-row">
          <button type="button" onClick={() => load(items.length)}>
            Show more items
          </button>
        </div>
      ) : null}
    </section>
  );
}

function TextUpload({ project, onUploaded }: { project: Project; onUploaded: () => void }) {
  const [run, error, busy] = useAction();
  const [result, setResult] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const classes = (project.label_schema as { classes?: string[] }).classes;
  const example = classes ? `{"label": "${classes[0]}"}` : project.label_schema.format === "json" ? '{"data": {...}}' : '{"text": "..."}';
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        run(async () => {
          setResult(null);
          const file = input.current?.files?.[0];
          if (!file) throw new Error("Choose a .jsonl or .csv file first.");
          const body = new FormData();
          body.append("file", file, file.name);
          const done = unwrap(
            await api.POST("/projects/{project_id}/items/text", {
              params: { path: { project_id: project.id } },
              body: body as never,
              bodySerializer: (b: unknown) => b as FormData,
            }),
          ) as UploadResult;
          setResult(`${file.name}: ${done.created} new items, ${done.duplicates} already stored.`);
          if (input.current) input.current.value = "";
          onUploaded();
        });
      }}
    >
      <label htmlFor="text-file">Text items (a JSONL or CSV file)</label>
      <input id="text-file" type="file" accept=".jsonl,.ndjson,.csv,application/x-ndjson,text/csv" ref={input} aria-describedby="text-file-hint" />
      <p id="text-file-hint" className="req-hint">
        One row per item with a <code>text</code> field, optionally your own <code>id</code> and a <code>gold_answer</code> (a
        JSON object such as <code>{example}</code>) for a gold item. A bad row is reported by line and nothing is stored.
      </p>
      <div className="req-row">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Uploading…" : "Upload text items"}
        </button>
      </div>
      {result ? (
        <p role="status" className="ok">
          {result}
        </p>
      ) : null}
      <ErrorNote error={error} />
    </form>
  );
}

interface Queued {
  file: File;
  gold: string; // "" not gold; a class name (classification) or JSON (boxes)
}

interface ChunkState {
  index: number;
  files: number;
  state: "waiting" | "sending" | "done" | "failed";
  note?: string;
}

function ImageUpload({ project, onUploaded }: { project: Project; onUploaded: () => void }) {
  const [queue, setQueue] = useState<Queued[]>([]);
  const [over, setOver] = useState(false);
  const [chunks, setChunks] = useState<ChunkState[]>([]);
  const [run, error, busy, setError] = useAction();
  const classes = (project.label_schema as { classes?: string[] }).classes ?? [];
  const boxes = project.task_type === "image_bbox";

  const add = (files: FileList | File[]) => {
    const list = Array.from(files);
    const refused = list.filter((f) => !IMAGE_TYPES.includes(f.type));
    const taken = new Set(queue.map((q) => q.file.name));
    const fresh = list.filter((f) => IMAGE_TYPES.includes(f.type) && !taken.has(f.name));
    setQueue((old) => [...old, ...fresh.map((file) => ({ file, gold: "" }))]);
    setChunks([]);
    setError(refused.length ? `Not added (only JPEG, PNG and WebP images): ${refused.map((f) => f.name).join(", ")}` : null);
  };

  const onDrop = (e: DragEvent<HTMLDivElement>) => {
    e.preventDefault();
    setOver(false);
    if (e.dataTransfer?.files?.length) add(e.dataTransfer.files);
  };

  const setGold = (name: string, gold: string) => setQueue((old) => old.map((q) => (q.file.name === name ? { ...q, gold } : q)));

  const upload = () =>
    run(async () => {
      const groups: Queued[][] = [];
      for (let i = 0; i < queue.length; i += PER_REQUEST) groups.push(queue.slice(i, i + PER_REQUEST));
      const states: ChunkState[] = groups.map((g, index) => ({ index, files: g.length, state: "waiting" }));
      setChunks([...states]);
      let sent = 0;
      try {
        for (const [index, group] of groups.entries()) {
          states[index] = { ...states[index], state: "sending" };
          setChunks([...states]);
          const body = new FormData();
          const golds: Record<string, unknown> = {};
          for (const q of group) {
            body.append("files", q.file, q.file.name);
            if (q.gold.trim()) {
              if (boxes) {
                try {
                  golds[q.file.name] = JSON.parse(q.gold);
                } catch {
                  throw new Error(`Gold answer of ${q.file.name}: not valid JSON.`);
                }
              } else golds[q.file.name] = { label: q.gold };
            }
          }
          if (Object.keys(golds).length) body.append("gold_answers", JSON.stringify(golds));
          try {
            const done = unwrap(
              await api.POST("/projects/{project_id}/items/images", {
                params: { path: { project_id: project.id } },
                body: body as never,
                bodySerializer: (b: unknown) => b as FormData,
              }),
            ) as UploadResult;
            states[index] = { ...states[index], state: "done", note: `${done.created} new, ${done.duplicates} already stored` };
          } catch (e) {
            states[index] = { ...states[index], state: "failed" };
            throw e;
          } finally {
            setChunks([...states]);
          }
          sent += group.length;
        }
      } finally {
        // What was stored leaves the queue; what was not stays, to fix and send again.
        setQueue((old) => old.slice(sent));
        if (sent) onUploaded();
      }
    });

  const doneCount = chunks.filter((c) => c.state === "done").length;
  return (
    <div>
      <div
        className={`req-drop${over ? " over" : ""}`}
        data-testid="image-drop"
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        <p>Drop JPEG, PNG or WebP images here, or</p>
        <label htmlFor="image-files">Choose images</label>
        <input
          id="image-files"
          type="file"
          multiple
          accept={IMAGE_TYPES.join(",")}
          onChange={(e) => {
            if (e.target.files) add(e.target.files);
            e.target.value = "";
          }}
        />
        <p className="req-hint">
          Each image is checked, stripped of its metadata (EXIF, GPS) and re-encoded; they are sent {PER_REQUEST} at a time.
        </p>
      </div>
      {queue.length ? (
        <>
          <div className="req-scroll" role="region" aria-label="Images to upload" tabIndex={0}>
            <table>
              <caption>Images to upload ({queue.length})</caption>
              <thead>
                <tr>
                  <th scope="col">File</th>
                  <th scope="col">Size</th>
                  <th scope="col">Gold answer (optional)</th>
                  <th scope="col">
                    <span className="visually-hidden">Remove</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {queue.map((q) => (
                  <tr key={q.file.name}>
                    <td>{q.file.name}</td>
                    <td>{(q.file.size / 1024).toFixed(1)} KiB</td>
                    <td>
                      {boxes ? (
                        <input
                          aria-label={`Gold answer of ${q.file.name} (JSON)`}
                          placeholder='{"boxes": [{"label": "…", "x": 0, "y": 0, "width": 10, "height": 10}]}'
                          value={q.gold}
                          onChange={(e) => setGold(q.file.name, e.target.value)}
                          className="mono"
                          style={{ width: "100%" }}
                        />
                      ) : (
                        <select aria-label={`Gold answer of ${q.file.name}`} value={q.gold} onChange={(e) => setGold(q.file.name, e.target.value)}>
                          <option value="">not a gold item</option>
                          {classes.map((c) => (
                            <option key={c} value={c}>
                              {c}
                            </option>
                          ))}
                        </select>
                      )}
                    </td>
                    <td>
                      <button type="button" disabled={busy} onClick={() => setQueue((old) => old.filter((o) => o !== q))} aria-label={`Remove ${q.file.name}`}>
                        Remove
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div className="req-row">
            <button type="button" className="primary" disabled={busy} onClick={upload}>
              {busy ? "Uploading…" : `Upload ${queue.length} image${queue.length === 1 ? "" : "s"}`}
            </button>
          </div>
        </>
      ) : null}
      {chunks.length ? (
        <div>
          <label htmlFor="image-progress">
            Upload progress: {doneCount} of {chunks.length} request{chunks.length === 1 ? "" : "s"}
          </label>
          <progress id="image-progress" max={chunks.length} value={doneCount} />
          <ul aria-live="polite">
            {chunks.map((c) => (
              <li key={c.index}>
                Request {c.index + 1} of {chunks.length} ({c.files} image{c.files === 1 ? "" : "s"}): {c.state}
                {c.note ? ` — ${c.note}` : ""}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <ErrorNote error={error} />
    </div>
  );
}
