// The web app (frontend/app) built into frontend/dist, which the API serves at `/`.
//   npx vite build --config frontend/vite.config.mts        (make build does this)
//   npx vite --config frontend/vite.config.mts              (a dev server; API calls go to :8000)
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const API = process.env.PROVENANT_API_URL ?? "http://127.0.0.1:8000";
const API_PREFIXES = [
  "/auth", "/consent", "/projects", "/tasks", "/contributions", "/batches", "/earnings",
  "/faucet", "/versions", "/me", "/network", "/health",
];

export default defineConfig({
  root: fileURLToPath(new URL("./app", import.meta.url)),
  plugins: [react()],
  build: {
    // PROVENANT_WEB_DIST_DIR: where the API serves the app from (its default, frontend/dist).
    outDir: process.env.PROVENANT_WEB_DIST_DIR ?? fileURLToPath(new URL("./dist", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    reportCompressedSize: false,
    manifest: true, // dist/.vite/manifest.json: which chunks each page loads (bench/web.py)
  },
  server: { proxy: Object.fromEntries(API_PREFIXES.map((p) => [p, API])) },
});
