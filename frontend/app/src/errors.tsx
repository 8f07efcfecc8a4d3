// Every failure is shown to the person: the API's own detail, or the wallet's refusal in words.
import { useCallback, useState } from "react";
import { ApiError } from "./api/client";
import { walletErrorMessage } from "./wallet/wallet";

export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.detail;
  return walletErrorMessage(error);
}

export function ErrorNote({ error }: { error: string | null }) {
  if (!error) return null;
  return (
    <p role="alert" className="error">
      {error}
    </p>
  );
}

/** Run an action, keeping its error (shown with ErrorNote) and whether it is running. */
export function useAction(): [(action: () => Promise<void>) => Promise<void>, string | null, boolean, (e: string | null) => void] {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = useCallback(async (action: () => Promise<void>) => {
    setError(null);
    setBusy(true);
    try {
      await action();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }, []);
  return [run, error, busy, setError];
}
