import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "@xyflow/react/dist/style.css";
import "./styles.css";
import { App } from "./App";
import { catalogStore } from "./catalog";
import { getFlowInstance } from "./editor/flow";
import { graphStore } from "./editor/graphStore";
import { flushEvents, runStore as run } from "./editor/runState";
import { tabsStore } from "./editor/tabs";
import { zoomDetail } from "./editor/uiState";
import { currentWorkflow, openWorkflow } from "./editor/workflowIO";

// A small scripting hook (browser console, end-to-end tests): read or replace the open workflow.
(window as unknown as { latentgraph: unknown }).latentgraph = {
  getWorkflow: currentWorkflow,
  openWorkflow,
  graph: graphStore,
  run,
  tabs: tabsStore,
  flushEvents,
  catalog: () => catalogStore.get().catalog,
  flow: getFlowInstance,
  zoomDetail,
};

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
