export default function Contributor({ route }: { route: string[] }) {
  return (
    <section>
      <h1>Contributor</h1>
      <p className="muted">{route.join("/")}</p>
    </section>
  );
}
