export default function Auditor({ route }: { route: string[] }) {
  return (
    <section>
      <h1>Auditor</h1>
      <p className="muted">{route.join("/")}</p>
    </section>
  );
}
