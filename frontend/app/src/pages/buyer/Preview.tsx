// A preview: items drawn by the service's rule from the buyer's seed (or the latest block
// hash), each with its Merkle proof, which this page checks against the version's item root.
import { useState, type FormEvent } from "react";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorNote, useAction } from "../../errors";
import { leafHash, proves } from "../../merkle";

type Version = components["schemas"]["VersionPublic"];
type PreviewData = components["schemas"]["Preview"];

function labelText(label: Record<string, unknown>): string {
  const keys = Object.keys(label);
  if (keys.length === 1 && typeof label[keys[0]] === "string") return label[keys[0]] as string;
  return JSON.stringify(label);
}

export function Preview({ version }: { version: Version }) {
  const [seed, setSeed] = useState("");
  const [k, setK] = useState(5);
  const [preview, setPreview] = useState<PreviewData | null>(null);
  const [run, error, busy] = useAction();

  const draw = (event: FormEvent) => {
    event.preventDefault();
    run(async () => {
      const query = seed.trim() ? { seed: seed.trim(), k } : { k };
      setPreview(
        unwrap(
          await api.GET("/versions/{version_id}/preview", { params: { path: { version_id: version.id }, query } }),
        ),
      );
    });
  };

  const rootMatches = preview && version.item_root && preview.item_root.toLowerCase() === version.item_root.toLowerCase();
  return (
    <>
      <h2>Preview</h2>
      <form onSubmit={draw} className="preview-form">
        <div>
          <label htmlFor="preview-seed">Seed (optional)</label>
          <input
            id="preview-seed"
            value={seed}
            maxLength={200}
            onChange={(e) => setSeed(e.target.value)}
            aria-describedby="preview-seed-help"
          />
          <p id="preview-seed-help" className="muted">
            Any words of yours: the items are drawn from it by a fixed rule, so we cannot pick the best ones. Empty: the
            latest block hash.
          </p>
        </div>
        <div>
          <label htmlFor="preview-k">Items</label>
          <input id="preview-k" type="number" min={1} max={20} value={k} onChange={(e) => setK(Number(e.target.value) || 1)} />
        </div>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Drawing…" : "Draw a preview"}
        </button>
      </form>
      <ErrorNote error={error} />
      {preview ? (
        <>
          <p>
            Drawn from seed <span className="mono">{preview.seed}</span> by the rule: {preview.rule}
          </p>
          <p className={rootMatches ? "ok" : "error"}>
            {rootMatches
              ? "The preview's item root is the version's registered item root."
              : `The preview's item root ${preview.item_root} differs from the version's ${version.item_root}.`}
          </p>
          <table>
            <caption>Preview items and their proofs</caption>
            <thead>
              <tr>
                <th scope="col">Item</th>
                <th scope="col">Content</th>
                <th scope="col">Label</th>
                <th scope="col">Confidence</th>
                <th scope="col">Merkle proof</th>
              </tr>
            </thead>
            <tbody>
              {preview.items.map((item) => {
                let ok = false;
                try {
                  const leaf = leafHash(preview.leaf_encoding, [item.content_hash, item.label_hash]);
                  ok = proves(preview.item_root, leaf, item.proof);
                } catch {
                  ok = false;
                }
                return (
                  <tr key={item.index} data-proof={ok ? "valid" : "invalid"}>
                    <td>{item.index}</td>
                    <td>
                      {item.thumbnail_url ? (
                        <img src={item.thumbnail_url} alt={`Item ${item.index}`} className="thumb" />
                      ) : (
                        <span>{item.text ?? ""}</span>
                      )}
                      <div className="mono muted small">{item.content_hash}</div>
                    </td>
                    <td>{labelText(item.label)}</td>
                    <td>
                      {(item.confidence * 100).toFixed(0)}% of {item.n_answers} answers
                    </td>
                    <td>
                      {ok ? (
                        <span className="ok">valid ({item.proof.length} hashes)</span>
                      ) : (
                        <span className="error">does not verify</span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </>
      ) : null}
    </>
  );
}
