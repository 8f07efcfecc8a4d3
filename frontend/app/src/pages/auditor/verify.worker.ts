// The verifier runs here, off the page's thread: hashing a large manifest would freeze the
// page. It gets the manifest's bytes and the chain's RPC URL, nothing from our server.
import { httpRpc, verifyManifest } from "../../../../verifier/verify.mjs";

export type FromWorker =
  | { kind: "progress"; what: string; done: number; total: number }
  | { kind: "rpc"; method: string; calls: number }
  | { kind: "report"; report: unknown }
  | { kind: "error"; message: string };

self.onmessage = async (event: MessageEvent<{ bytes: ArrayBuffer; rpcUrl: string }>) => {
  const post = (message: FromWorker) => self.postMessage(message);
  // Each chain read is reported as it starts, so the page shows the chain being asked.
  const http = httpRpc(event.data.rpcUrl);
  let calls = 0;
  const rpc = {
    call: (method: string, params: unknown[]) => {
      post({ kind: "rpc", method, calls: ++calls });
      return http.call(method, params);
    },
  };
  try {
    const report = await verifyManifest(new Uint8Array(event.data.bytes), rpc, {
      progress: (what: string, done: number, total: number) => post({ kind: "progress", what, done, total }),
    });
    post({ kind: "report", report });
  } catch (error) {
    post({ kind: "error", message: error instanceof Error ? error.message : String(error) });
  }
};
