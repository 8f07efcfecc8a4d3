// The shell: the header (roles, wallet, sign-in) and the page the route names. Each role's
// pages load on demand, so a contributor's browser fetches only the contributor's code.
import { lazy, Suspense } from "react";
import { ErrorNote, useAction } from "./errors";
import { useRoute } from "./router";
import { useSession } from "./session";
import { Home } from "./pages/Home";

const Contributor = lazy(() => import("./pages/contributor/Contributor"));
const Requester = lazy(() => import("./pages/requester/Requester"));
const Buyer = lazy(() => import("./pages/buyer/Buyer"));
const Auditor = lazy(() => import("./pages/auditor/Auditor"));

const ROLES: [string, string][] = [
  ["contribute", "Contribute"],
  ["requester", "Projects"],
  ["datasets", "Datasets"],
  ["audit", "Audit"],
];

function Account() {
  const { address, signIn, signOut, network } = useSession();
  const [run, error, busy] = useAction();
  return (
    <div className="account">
      {address ? (
        <>
          <span aria-label="Signed in as" title={address} className="address">
            {address.slice(0, 6)}…{address.slice(-4)}
          </span>
          <button type="button" onClick={() => run(signOut)}>
            Sign out
          </button>
        </>
      ) : (
        <button type="button" className="primary" disabled={busy} onClick={() => run(signIn)}>
          {busy ? "Check your wallet…" : "Sign in with your wallet"}
        </button>
      )}
      {network === null ? null : <span className="chain">chain {network.chain_id}</span>}
      <ErrorNote error={error} />
    </div>
  );
}

export function App() {
  const [role, ...rest] = useRoute();
  const page = (() => {
    switch (role) {
      case "contribute":
        return <Contributor route={rest} />;
      case "requester":
        return <Requester route={rest} />;
      case "datasets":
        return <Buyer route={rest} />;
      case "audit":
        return <Auditor route={rest} />;
      default:
        return <Home />;
    }
  })();
  return (
    <>
      <a className="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        Skip to content
      </a>
      <header>
        <a href="#/" className="brand">
          Provenant
        </a>
        <nav aria-label="Roles">
          {ROLES.map(([path, label]) => (
            <a key={path} href={`#/${path}`} aria-current={role === path ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <Account />
      </header>
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<p aria-busy="true">Loading…</p>}>{page}</Suspense>
      </main>
    </>
  );
}
