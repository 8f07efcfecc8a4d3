export function Home() {
  return (
    <section aria-labelledby="home-title">
      <h1 id="home-title">A data marketplace you can check</h1>
      <p>
        Contributors label data and are paid on chain; every answer is hashed and anchored, consent
        is explicit and revocable, and each licence sold pays a royalty to the people whose work is
        in the dataset. Anyone can verify a dataset from its manifest and the chain alone.
      </p>
      <ul className="cards">
        <li>
          <a href="#/contribute">Contribute</a>: sign in, consent, label, get paid.
        </li>
        <li>
          <a href="#/requester">Projects</a>: create a labelling project, fund it, publish datasets.
        </li>
        <li>
          <a href="#/datasets">Datasets</a>: browse, preview with proofs, license and download.
        </li>
        <li>
          <a href="#/audit">Audit</a>: verify a dataset version in your browser against the chain.
        </li>
      </ul>
    </section>
  );
}
