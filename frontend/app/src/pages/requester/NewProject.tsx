// A new project of any task type. Limits mirror backend/projects/models.py ProjectCreate;
// the API checks them again and its detail is shown if it refuses.
import { useState, type FormEvent } from "react";
import { api, unwrap } from "../../api/client";
import { ErrorNote, useAction } from "../../errors";
import { go } from "../../router";
import { useSession } from "../../session";
import { bigJson, TASK_TYPES, toBaseUnits, type Project } from "./shared";

const EXAMPLE_SCHEMA = `{
  "type": "object",
  "properties": {
    "name": { "type": "string" },
    "amount": { "type": "number" }
  },
  "required": ["name"]
}`;

function classesOf(text: string): string[] {
  return text
    .split(/\n|,/)
    .map((c) => c.trim())
    .filter(Boolean);
}

function optionalNumber(text: string, what: string): number | undefined {
  if (text.trim() === "") return undefined;
  const n = Number(text);
  if (!Number.isFinite(n)) throw new Error(`${what}: enter a number.`);
  return n;
}

export function NewProject() {
  const { network } = useSession();
  const [run, error, busy] = useAction();
  const [taskType, setTaskType] = useState("text_classification");
  const [format, setFormat] = useState<"text" | "json">("text");

  const classified = taskType !== "transcription";

  async function submit(form: HTMLFormElement) {
    const f = new FormData(form);
    const text = (name: string) => String(f.get(name) ?? "");
    let labelSchema: Record<string, unknown>;
    if (classified) {
      labelSchema = { classes: classesOf(text("classes")) };
      if (taskType === "image_bbox") {
        labelSchema.min_boxes = optionalNumber(text("min_boxes"), "Fewest boxes") ?? 0;
        labelSchema.max_boxes = optionalNumber(text("max_boxes"), "Most boxes") ?? 50;
      }
    } else if (format === "text") {
      labelSchema = { format: "text", max_length: optionalNumber(text("max_length"), "Longest answer") ?? 10000 };
    } else {
      let schema: unknown;
      try {
        schema = JSON.parse(text("json_schema"));
      } catch (e) {
        throw new Error(`JSON Schema: not valid JSON (${(e as Error).message}).`);
      }
      labelSchema = { format: "json", json_schema: schema };
    }
    const body: Record<string, unknown> = {
      task_type: taskType,
      title: text("title").trim(),
      instructions: text("instructions").trim(),
      label_schema: labelSchema,
      overlap: optionalNumber(text("overlap"), "Answers per item") ?? 3,
      reward_per_answer: toBaseUnits(text("reward") || "0", network, "Reward per answer"),
      gold_bonus: toBaseUnits(text("gold_bonus") || "0", network, "Gold bonus"),
      gold_rate: (optionalNumber(text("gold_rate"), "Gold rate") ?? 0) / 100,
      lease_seconds: optionalNumber(text("lease_seconds"), "Lease") ?? 600,
    };
    const quality: [string, string][] = [
      ["min_confidence", "Lowest confidence"],
      ["max_extra_answers", "Extra answers for review"],
      ["min_gold_accuracy", "Lowest gold accuracy"],
      ["min_gold_answers", "Gold answers before judging"],
      ["min_ms_per_task", "Fastest plausible answer"],
      ["max_answers_per_minute", "Most answers per minute"],
    ];
    for (const [name, what] of quality) {
      const value = optionalNumber(text(name), what);
      if (value !== undefined) body[name] = value;
    }
    const created = unwrap(
      await api.POST("/projects", {
        body: body as never,
        bodySerializer: bigJson,
      }),
    ) as Project;
    go("requester", created.id);
  }

  return (
    <section className="req-panel" aria-labelledby="new-project">
      <h2 id="new-project">New project</h2>
      <form
        className="req-form"
        onSubmit={(e: FormEvent<HTMLFormElement>) => {
          e.preventDefault();
          const form = e.currentTarget;
          run(() => submit(form));
        }}
      >
        <label htmlFor="np-title">Title</label>
        <input id="np-title" name="title" required maxLength={200} style={{ width: "100%" }} />
        <label htmlFor="np-instructions">Instructions for contributors</label>
        <textarea id="np-instructions" name="instructions" required maxLength={20000} rows={4} />
        <label htmlFor="np-task">Task type</label>
        <select id="np-task" name="task_type" value={taskType} onChange={(e) => setTaskType(e.target.value)}>
          {TASK_TYPES.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>

        <fieldset>
          <legend>Label schema</legend>
          {classified ? (
            <>
              <label htmlFor="np-classes">Classes (one per line, or separated by commas)</label>
              <textarea id="np-classes" name="classes" rows={3} required aria-describedby="np-classes-hint" />
              <p id="np-classes-hint" className="req-hint">
                At least 2 distinct names, each up to 200 characters.
              </p>
              {taskType === "image_bbox" ? (
                <div className="req-grid">
                  <div>
                    <label htmlFor="np-min-boxes">Fewest boxes per image</label>
                    <input id="np-min-boxes" name="min_boxes" type="number" min={0} max={500} defaultValue={0} />
                  </div>
                  <div>
                    <label htmlFor="np-max-boxes">Most boxes per image</label>
                    <input id="np-max-boxes" name="max_boxes" type="number" min={1} max={500} defaultValue={50} />
                  </div>
                </div>
              ) : null}
            </>
          ) : (
            <>
              <div role="radiogroup" aria-label="Answer format">
                <label className="req-check">
                  <input type="radio" name="format" value="text" checked={format === "text"} onChange={() => setFormat("text")} />
                  Free text
                </label>
                <label className="req-check">
                  <input type="radio" name="format" value="json" checked={format === "json"} onChange={() => setFormat("json")} />
                  JSON matching a JSON Schema
                </label>
              </div>
              {format === "text" ? (
                <>
                  <label htmlFor="np-max-length">Longest answer (characters)</label>
                  <input id="np-max-length" name="max_length" type="number" min={1} max={20000} defaultValue={10000} />
                </>
              ) : (
                <>
                  <label htmlFor="np-json-schema">JSON Schema (draft 2020-12) of an answer</label>
                  <textarea id="np-json-schema" name="json_schema" rows={10} className="mono" defaultValue={EXAMPLE_SCHEMA} aria-describedby="np-json-hint" />
                  <p id="np-json-hint" className="req-hint">
                    References must stay within the schema; patterns must be RE2-compatible.
                  </p>
                </>
              )}
            </>
          )}
        </fieldset>

        <div className="req-grid">
          <div>
            <label htmlFor="np-overlap">Answers per item (overlap)</label>
            <input id="np-overlap" name="overlap" type="number" min={1} max={100} defaultValue={3} required />
          </div>
          <div>
            <label htmlFor="np-reward">Reward per accepted answer ({network?.token_symbol ?? "tokens"})</label>
            <input id="np-reward" name="reward" inputMode="decimal" defaultValue="1" required />
          </div>
          <div>
            <label htmlFor="np-gold-rate">Gold items mixed in (%)</label>
            <input id="np-gold-rate" name="gold_rate" type="number" min={0} max={100} step="any" defaultValue={10} />
          </div>
          <div>
            <label htmlFor="np-gold-bonus">Bonus per correct gold answer ({network?.token_symbol ?? "tokens"})</label>
            <input id="np-gold-bonus" name="gold_bonus" inputMode="decimal" defaultValue="0" />
          </div>
          <div>
            <label htmlFor="np-lease">Lease per task (seconds)</label>
            <input id="np-lease" name="lease_seconds" type="number" min={10} max={86400} defaultValue={600} />
          </div>
        </div>

        <details>
          <summary>Quality controls</summary>
          <div className="req-grid">
            <div>
              <label htmlFor="np-min-confidence">Lowest consensus confidence (0–1)</label>
              <input id="np-min-confidence" name="min_confidence" type="number" min={0} max={1} step="any" placeholder="0.7" />
            </div>
            <div>
              <label htmlFor="np-extra">Extra answers for review (per item)</label>
              <input id="np-extra" name="max_extra_answers" type="number" min={0} max={20} placeholder="2" />
            </div>
            <div>
              <label htmlFor="np-min-gold">Lowest gold accuracy (0–1)</label>
              <input id="np-min-gold" name="min_gold_accuracy" type="number" min={0} max={1} step="any" placeholder="0.6" />
            </div>
            <div>
              <label htmlFor="np-gold-answers">Gold answers before judging</label>
              <input id="np-gold-answers" name="min_gold_answers" type="number" min={1} max={1000} placeholder="3" />
            </div>
            <div>
              <label htmlFor="np-min-ms">Fastest plausible answer (ms)</label>
              <input id="np-min-ms" name="min_ms_per_task" type="number" min={0} max={3600000} placeholder="task type's default" />
            </div>
            <div>
              <label htmlFor="np-rate">Most answers per minute</label>
              <input id="np-rate" name="max_answers_per_minute" type="number" min={1} max={10000} placeholder="60" />
            </div>
          </div>
        </details>

        <div className="req-row">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Creating…" : "Create project"}
          </button>
        </div>
        <ErrorNote error={error} />
      </form>
    </section>
  );
}
