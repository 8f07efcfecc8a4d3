// A verification report's checks as a table: the same shape from the browser's verifier
// and from the worker's `provenant verify` (GET /versions/{id}/verification).
export interface CheckRow {
  check: string;
  title: string;
  status: string;
  checked: number;
  failures: number;
  failure?: string | null;
  skipped?: string | null;
}

const STATUS_WORDS: Record<string, string> = { ok: "passed", FAIL: "failed", skip: "skipped" };

export function ChecksTable({ checks, caption }: { checks: CheckRow[]; caption: string }) {
  return (
    <table className="checks">
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Check</th>
          <th scope="col">What holds</th>
          <th scope="col">Result</th>
          <th scope="col">Checked</th>
          <th scope="col">Detail</th>
        </tr>
      </thead>
      <tbody>
        {checks.map((c) => (
          <tr key={c.check} data-status={c.status}>
            <td className="mono">{c.check}</td>
            <td>{c.title}</td>
            <td className={c.status === "FAIL" ? "check-fail" : c.status === "ok" ? "ok" : "muted"}>
              {STATUS_WORDS[c.status] ?? c.status}
            </td>
            <td>{c.checked}</td>
            <td>
              {c.failure ? (
                <>
                  {c.failure}
                  {c.failures > 1 ? <span className="muted"> (and {c.failures - 1} more)</span> : null}
                </>
              ) : (
                c.skipped ?? ""
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
