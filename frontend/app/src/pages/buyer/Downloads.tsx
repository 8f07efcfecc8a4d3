// Downloads for licence holders: each export (a tar archive) and the manifest, fetched with
// the session's token and handed to the browser as a file; the archive's SHA-256 is checked
// here against the digest published with the version.
import { useEffect, useRef, useState } from "react";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorNote, useAction } from "../../errors";
import { bytes } from "./format";

type Version = components["schemas"]["VersionPublic"];

interface Saved {
  url: string;
  name: string;
  size: number;
  digestOk: boolean | null;
}

function filenameOf(response: Response, fallback: string): string {
  const match = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") ?? "");
  return match ? match[1] : fallback;
}

async function sha256(blob: Blob): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export function Downloads({ version }: { version: Version }) {
  const [saved, setSaved] = useState<Record<string, Saved>>({});
  const [run, error, busy] = useAction();
  const urls = useRef<string[]>([]);

  useEffect(() => () => urls.current.forEach((u) => URL.revokeObjectURL(u)), []);

  const keep = (key: string, blob: Blob, name: string, digestOk: boolean | null) => {
    const url = URL.createObjectURL(blob);
    urls.current.push(url);
    setSaved((s) => ({ ...s, [key]: { url, name, size: blob.size, digestOk } }));
  };

  const fetchExport = (format: string, expected: string | undefined) =>
    run(async () => {
      const reply = await api.GET("/versions/{version_id}/exports/{fmt}", {
        params: { path: { version_id: version.id, fmt: format } },
        parseAs: "blob",
      });
      const blob = unwrap(reply) as Blob;
      const name = filenameOf(reply.response, `version-${version.id}-${format}.tar`);
      keep(format, blob, name, expected ? (await sha256(blob)) === expected.replace(/^sha256:/, "") : null);
    });

  const fetchManifest = () =>
    run(async () => {
      const reply = await api.GET("/versions/{version_id}/manifest", {
        params: { path: { version_id: version.id } },
        parseAs: "blob",
      });
      const blob = unwrap(reply) as Blob;
      keep("manifest", blob, filenameOf(reply.response, `version-${version.id}-manifest.json`), null);
    });

  const link = (key: string) => {
    const s = saved[key];
    if (!s) return null;
    return (
      <>
        {" "}
        <a href={s.url} download={s.name}>
          Save {s.name}
        </a>{" "}
        <span className="muted">({bytes(s.size)})</span>
        {s.digestOk === true ? <span className="ok"> SHA-256 matches the published digest</span> : null}
        {s.digestOk === false ? <span className="error"> SHA-256 does NOT match the published digest</span> : null}
      </>
    );
  };

  const formats = version.formats as { format: string; sha256?: string; bytes?: number }[];
  return (
    <>
      <h2>Downloads</h2>
      <ul className="downloads">
        {formats.map((f) => (
          <li key={f.format}>
            <button type="button" disabled={busy} onClick={() => fetchExport(f.format, f.sha256)}>
              Download {f.format}
            </button>
            {f.bytes != null ? <span className="muted"> {bytes(f.bytes)}</span> : null}
            {link(f.format)}
          </li>
        ))}
        <li>
          <button type="button" disabled={busy} onClick={fetchManifest}>
            Download the manifest
          </button>
          {link("manifest")}
          {saved.manifest ? (
            <span>
              {" "}
              · <a href={`#/audit/${version.id}`}>verify it</a>
            </span>
          ) : null}
        </li>
      </ul>
      <ErrorNote error={error} />
    </>
  );
}
