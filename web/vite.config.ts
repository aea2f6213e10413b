import { defineConfig, type ProxyOptions } from "vite";
import react from "@vitejs/plugin-react";

// The built editor is served by `latentgraph serve` at "/". Relative asset URLs keep it working
// behind a path prefix too. No source maps and no build-time data keep `web/dist` reproducible.
const server = process.env.LATENTGRAPH_SERVER ?? "http://127.0.0.1:8188";

// In development the page comes from Vite's origin; the server refuses state-changing requests
// from other origins, so the proxy presents them as coming from the server's own origin.
const proxy = (target: string): ProxyOptions => ({
  target,
  changeOrigin: true,
  ws: target.startsWith("ws"),
  configure: (p) => {
    p.on("proxyReq", (req) => req.setHeader("origin", server));
    p.on("proxyReqWs", (req) => req.setHeader("origin", server));
  },
});

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
      "/api": proxy(server),
      "/ws": proxy(server.replace(/^http/, "ws")),
    },
  },
});
