export default function Requester({ route }: { route: string[] }) {
  return (
    <section>
      <h1>Requester</h1>
      <p className="muted">{route.join("/")}</p>
    </section>
  );
}
