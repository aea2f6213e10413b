import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "@xyflow/react/dist/style.css";
import "./styles.css";
import { App } from "./App";
import { graphStore } from "./editor/graphStore";
import { runStore } from "./editor/runState";
import { currentWorkflow, openWorkflow } from "./editor/workflowIO";

// A small scripting hook (browser console, end-to-end tests): read or replace the open workflow.
(window as unknown as { latentgraph: unknown }).latentgraph = {
  getWorkflow: currentWorkflow,
  openWorkflow,
  graph: graphStore,
  run: runStore,
};

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
