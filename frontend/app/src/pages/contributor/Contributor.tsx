// The contributor's pages: pick a project, consent, label, see earnings and contributions.
import { ErrorNote, useAction } from "../../errors";
import { useSession } from "../../session";
import { ConsentPage, useConsentStatus } from "./Consent";
import { ContributionsPage } from "./Contributions";
import { EarningsPage } from "./Earnings";
import { TASK_TYPES, useAmount, useProjects } from "./shared";
import { TaskLoop } from "./TaskLoop";
import "./contributor.css";

const TABS: [string, string][] = [
  ["", "Pick a project"],
  ["consent", "Consent"],
  ["earnings", "Earnings"],
  ["contributions", "Contributions"],
];

export default function Contributor({ route }: { route: string[] }) {
  const { address } = useSession();
  const [first] = route;
  const projectId = first && /^\d+$/.test(first) ? Number(first) : null;
  const tab = projectId === null ? (first ?? "") : null;
  const page = (() => {
    if (projectId !== null) return <TaskLoop key={projectId} projectId={projectId} />;
    if (!address) return <Projects />;
    switch (tab) {
      case "consent":
        return <ConsentPage />;
      case "earnings":
        return <EarningsPage />;
      case "contributions":
        return <ContributionsPage />;
      default:
        return <Projects />;
    }
  })();
  return (
    <div className="contributor">
      <h1>Contribute</h1>
      {address ? (
        <nav aria-label="Contributor" className="tabs">
          {TABS.map(([path, label]) => (
            <a key={path} href={path ? `#/contribute/${path}` : "#/contribute"} aria-current={tab === path ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
      ) : null}
      {page}
    </div>
  );
}

function SignInPrompt() {
  const { signIn } = useSession();
  const [run, error, busy] = useAction();
  return (
    <div className="prompt">
      <p>Sign in with your Ethereum wallet to consent, take tasks and get paid. Signing in costs nothing.</p>
      <button type="button" className="primary big" disabled={busy} onClick={() => run(signIn)}>
        {busy ? "Check your wallet…" : "Sign in to contribute"}
      </button>
      <ErrorNote error={error} />
    </div>
  );
}

function ConsentNotice() {
  const [status, error] = useConsentStatus();
  if (error) return <ErrorNote error={error} />;
  if (!status || status.active) return null;
  return (
    <p className="notice">
      Before your first task, <a href="#/contribute/consent">read and sign the consent terms</a>.
    </p>
  );
}

function Projects() {
  const { address } = useSession();
  const [projects, error] = useProjects();
  const amount = useAmount(projects?.map((p) => p.reward_token) ?? []);
  return (
    <section aria-labelledby="projects-title">
      <h2 id="projects-title">Projects</h2>
      {address ? <ConsentNotice /> : <SignInPrompt />}
      <ErrorNote error={error} />
      {projects === null ? (
        error ? null : <p aria-busy="true">Loading projects…</p>
      ) : projects.length === 0 ? (
        <p>No project is open yet.</p>
      ) : (
        <ul className="cards projects">
          {projects.map((p) => (
            <li key={p.id}>
              <h3>
                <a href={`#/contribute/${p.id}`}>{p.title}</a>
              </h3>
              <p className="muted">
                {TASK_TYPES[p.task_type] ?? p.task_type} · {amount(p.reward_per_answer, p.reward_token)} per accepted answer
              </p>
              <p className="clamp">{p.instructions}</p>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
