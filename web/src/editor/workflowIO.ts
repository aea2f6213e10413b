// Opening and saving workflows: the current graph as a workflow, files (download, upload, drop),
// the server library, auto-save in localStorage (every tab) and the first-visit default workflow.
// Replacing a graph with unsaved changes asks first.
import { api, ApiError } from "../api";
import { catalogStore } from "../catalog";
import defaultWorkflow from "../default-workflow.json";
import { asOurWorkflow, workflowToGraph } from "../workflowJson";
import type { GraphError, SweepDoc, Workflow } from "../types";
import { getFlowInstance } from "./flow";
import { graphStore, replaceGraph } from "./graphStore";
import { clearResults, runStore, setErrors } from "./runState";
import { rootNodeIds, rootWorkflow } from "./subgraphs";
import { restoreSweep } from "./sweep";
import { newTab, persistTabs, readSavedTabs, restoreTabs } from "./tabs";
import { ask, toast } from "./uiState";

/** Where the single-graph editor kept its auto-save (read once, to carry it into the tabs). */
const OLD_AUTOSAVE_KEY = "latentgraph.workflow";
const OLD_NAME_KEY = "latentgraph.workflowName";

/** The graph being edited, in our workflow format (subgraphs open for editing folded back in). */
export function currentWorkflow(): Workflow {
  return rootWorkflow(getFlowInstance()?.getViewport());
}

/** Put a workflow on the canvas, after checking it against the catalog. */
export function openWorkflow(
  workflow: Workflow,
  options: { name?: string; undoable?: boolean; dirty?: boolean; fit?: boolean } = {},
): boolean {
  const { catalog, dynamicChoices } = catalogStore.get();
  if (!catalog) {
    toast("error", "The node catalog is not loaded yet");
    return false;
  }
  const loaded = workflowToGraph(workflow, catalog, dynamicChoices);
  clearResults();
  replaceGraph(
    { ...loaded, subgraphs: workflow.subgraphs ?? {} },
    { undoable: options.undoable ?? true, name: options.name, viewport: loaded.viewport, dirty: options.dirty },
  );
  const problems: GraphError[] = loaded.problems.map((message) => ({ kind: "bad_format", node_id: null, input: null, message }));
  if (problems.length) setErrors(problems, new Set());
  void checkWithServer(problems);
  window.requestAnimationFrame(() => {
    const flow = getFlowInstance();
    if (!flow) return;
    if (loaded.viewport && !options.fit) void flow.setViewport(loaded.viewport);
    else fitReadable();
  });
  return true;
}

/** Node text is 13 px: at this zoom it is 11 px on screen, the least that reads comfortably. */
const READABLE_ZOOM = 0.85;

/** Fit the graph, but never so small that its text is hard to read (then the top left shows). */
export function fitReadable(): void {
  const flow = getFlowInstance();
  if (!flow) return;
  void flow.fitView({ padding: 0.05, maxZoom: 1 }).then(() => {
    if (flow.getViewport().zoom >= READABLE_ZOOM) return;
    const nodes = flow.getNodes();
    if (!nodes.length) return;
    const left = Math.min(...nodes.map((n) => n.position.x));
    const top = Math.min(...nodes.map((n) => n.position.y));
    void flow.setViewport({ x: 24 - left * READABLE_ZOOM, y: 24 - top * READABLE_ZOOM, zoom: READABLE_ZOOM });
  });
}

/** Show the server's validation errors of a workflow just opened (a missing model, a bad value). */
async function checkWithServer(localProblems: GraphError[]): Promise<void> {
  const workflow = currentWorkflow();
  const snapshot = JSON.stringify(workflow.nodes);
  try {
    const { errors } = await api.validate(workflow);
    if (JSON.stringify(currentWorkflow().nodes) !== snapshot) return; // edited meanwhile: the next run will tell
    setErrors([...localProblems, ...(errors ?? [])], rootNodeIds());
  } catch {
    // the server is unreachable: the connection indicator says so
  }
}

/**
 * Open a workflow in place of the one being edited. With unsaved changes the user chooses:
 * replace them, open it in a new tab, or cancel.
 */
export async function openReplacing(workflow: Workflow, name: string): Promise<boolean> {
  if (graphStore.get().dirty) {
    const choice = await ask(`“${graphStore.get().name}” has unsaved changes. Open “${name}” anyway?`, [
      { label: "Discard changes", value: "replace" },
      { label: "Open in a new tab", value: "tab", primary: true },
      { label: "Cancel", value: "cancel" },
    ]);
    if (choice === "tab") {
      let opened = false;
      newTab(() => (opened = openWorkflow(workflow, { name, undoable: false })));
      return opened;
    }
    if (choice !== "replace") return false;
  }
  return openWorkflow(workflow, { name });
}

/** Read a dropped or chosen file: our JSON directly, anything else through the server's import
 * (a sweep's grid PNG gives its sweep too). */
async function readWorkflowFile(file: File): Promise<{ workflow: Workflow; sweep?: SweepDoc }> {
  if (file.name.toLowerCase().endsWith(".json") || file.type === "application/json") {
    const text = await file.text();
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new ApiError(`${file.name} is not valid JSON`, 0);
    }
    const ours = asOurWorkflow(doc);
    if (ours) return { workflow: ours };
  }
  return await api.importFile(file, file.name);
}

export async function openFile(file: File): Promise<void> {
  const name = file.name.replace(/\.(json|png|webp|jpe?g)$/i, "") || "untitled";
  try {
    const { workflow, sweep } = await readWorkflowFile(file);
    const ours = file.name.toLowerCase().endsWith(".json") && workflow.format === "latentgraph";
    if (!(await openReplacing(workflow, name))) return;
    if (sweep) restoreSweep(sweep);
    if (!ours) toast("success", sweep ? `Opened ${file.name} with its sweep` : `Opened ${file.name}`);
  } catch (err) {
    toast("error", `Cannot open ${file.name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export function downloadWorkflow(): void {
  const name = graphStore.get().name || "workflow";
  const blob = new Blob([JSON.stringify(currentWorkflow(), null, 2) + "\n"], { type: "application/json" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `${name}.json`;
  link.click();
  window.setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

export async function saveToLibrary(name: string): Promise<boolean> {
  try {
    await api.saveWorkflow(name, currentWorkflow());
    graphStore.set({ name, dirty: false });
    toast("success", `Saved “${name}”`);
    return true;
  } catch (err) {
    toast("error", `Cannot save: ${err instanceof Error ? err.message : String(err)}`);
    return false;
  }
}

export async function openFromLibrary(name: string): Promise<void> {
  try {
    const doc = await api.getWorkflow(name);
    const workflow = "workflow" in doc && doc.workflow ? doc.workflow : (doc as Workflow);
    await openReplacing(workflow, name);
  } catch (err) {
    toast("error", `Cannot open “${name}”: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const DEFAULT = defaultWorkflow as unknown as Workflow;

/** The default workflow (txt2img on tiny-shapes), in place of the current one (asking first). */
export async function openDefaultWorkflow(): Promise<void> {
  await openReplacing(DEFAULT, "default");
}

export function newDefaultTab(): void {
  newTab(() => openWorkflow(DEFAULT, { name: "default", undoable: false, fit: true }));
}

/** First load: the tabs saved before, or the default workflow on a first visit. */
export function openInitialWorkflow(): void {
  const saved = readSavedTabs() ?? legacyAutosave();
  if (saved) {
    restoreTabs(saved, (tab) => {
      const workflow = asOurWorkflow(tab.workflow);
      return workflow ? openWorkflow(workflow, { name: tab.name, undoable: false, dirty: tab.dirty }) : openWorkflow(DEFAULT, { name: "default", undoable: false, fit: true });
    });
    return;
  }
  openWorkflow(DEFAULT, { name: "default", undoable: false, fit: true });
}

function legacyAutosave() {
  try {
    const workflow = asOurWorkflow(JSON.parse(localStorage.getItem(OLD_AUTOSAVE_KEY) ?? "null"));
    if (!workflow) return null;
    const name = localStorage.getItem(OLD_NAME_KEY) ?? "untitled";
    return { active: "t1", tabs: [{ id: "t1", name, dirty: false, workflow }] };
  } catch {
    return null;
  }
}

/** Save every tab in localStorage shortly after each change (of a graph, or of its images). */
export function startAutosave(): () => void {
  let timer: number | undefined;
  const save = () => {
    if (catalogStore.get().catalog) persistTabs(currentWorkflow());
  };
  const later = () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(save, 300);
  };
  let imageJobs = runStore.get().imageJobs;
  const unsubscribeGraph = graphStore.subscribe(later);
  const unsubscribeRuns = runStore.subscribe(() => {
    if (runStore.get().imageJobs === imageJobs) return;
    imageJobs = runStore.get().imageJobs;
    later();
  });
  window.addEventListener("beforeunload", save);
  return () => {
    unsubscribeGraph();
    unsubscribeRuns();
    window.removeEventListener("beforeunload", save);
  };
}
