export default function Buyer({ route }: { route: string[] }) {
  return (
    <section>
      <h1>Buyer</h1>
      <p className="muted">{route.join("/")}</p>
    </section>
  );
}
