// Routes live in the URL's fragment (#/contribute/3), so no page can shadow an API path.
import { useEffect, useState } from "react";

export function currentRoute(): string[] {
  return location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
}

export function useRoute(): string[] {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const onChange = () => setRoute(currentRoute());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

export function go(...parts: (string | number)[]): void {
  location.hash = "/" + parts.map((p) => encodeURIComponent(String(p))).join("/");
}
