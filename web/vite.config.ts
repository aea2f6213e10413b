import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The built editor is served by `latentgraph serve` at "/". Relative asset URLs keep it working
// behind a path prefix too. No source maps and no build-time data keep `web/dist` reproducible.
const server = process.env.LATENTGRAPH_SERVER ?? "http://127.0.0.1:8188";

export default defineConfig({
  base: "./",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: {
      "/api": { target: server, changeOrigin: true },
      "/ws": { target: server.replace(/^http/, "ws"), ws: true, changeOrigin: true },
    },
  },
});
