// Opening and saving workflows: the current graph as a workflow, files (download, upload, drop),
// the server library, auto-save in localStorage and the first-visit default workflow.
import { api, ApiError } from "../api";
import { catalogStore } from "../catalog";
import defaultWorkflow from "../default-workflow.json";
import { asOurWorkflow, graphToWorkflow, workflowToGraph } from "../graphModel";
import type { GraphError, Workflow } from "../types";
import { getFlowInstance } from "./flow";
import { graphStore, replaceGraph } from "./graphStore";
import { clearResults, setErrors } from "./runState";
import { toast } from "./uiState";

const AUTOSAVE_KEY = "latentgraph.workflow";
const NAME_KEY = "latentgraph.workflowName";

/** The graph on the canvas, in our workflow format. */
export function currentWorkflow(): Workflow {
  const { nodes, edges, viewport } = graphStore.get();
  return graphToWorkflow(nodes, edges, catalogStore.get().catalog, getFlowInstance()?.getViewport() ?? viewport);
}

/** Put a workflow on the canvas, after checking it against the catalog. */
export function openWorkflow(workflow: Workflow, options: { name?: string; undoable?: boolean } = {}): boolean {
  const { catalog, dynamicChoices } = catalogStore.get();
  if (!catalog) {
    toast("error", "The node catalog is not loaded yet");
    return false;
  }
  const loaded = workflowToGraph(workflow, catalog, dynamicChoices);
  clearResults();
  replaceGraph(loaded, { undoable: options.undoable ?? true, name: options.name, viewport: loaded.viewport });
  const problems: GraphError[] = loaded.problems.map((message) => ({ kind: "bad_format", node_id: null, input: null, message }));
  if (problems.length) setErrors(problems, new Set());
  void checkWithServer(problems);
  window.requestAnimationFrame(() => {
    const flow = getFlowInstance();
    if (!flow) return;
    if (loaded.viewport) void flow.setViewport(loaded.viewport);
    else void flow.fitView({ padding: 0.15, maxZoom: 1 });
  });
  return true;
}

/** Show the server's validation errors of a workflow just opened (a missing model, a bad value). */
async function checkWithServer(localProblems: GraphError[]): Promise<void> {
  const workflow = currentWorkflow();
  const snapshot = JSON.stringify(workflow.nodes);
  try {
    const { errors } = await api.validate(workflow);
    if (JSON.stringify(currentWorkflow().nodes) !== snapshot) return; // edited meanwhile: the next run will tell
    setErrors([...localProblems, ...(errors ?? [])], new Set(Object.keys(workflow.nodes)));
  } catch {
    // the server is unreachable: the connection indicator says so
  }
}

/** Open a dropped or chosen file: our JSON directly, anything else through the server's import. */
export async function openFile(file: File): Promise<void> {
  const name = file.name.replace(/\.(json|png|webp|jpe?g)$/i, "") || "untitled";
  try {
    if (file.name.toLowerCase().endsWith(".json") || file.type === "application/json") {
      const text = await file.text();
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch {
        throw new ApiError(`${file.name} is not valid JSON`, 0);
      }
      const ours = asOurWorkflow(doc);
      if (ours) {
        openWorkflow(ours, { name });
        return;
      }
    }
    const { workflow } = await api.importFile(file, file.name);
    if (openWorkflow(workflow, { name })) toast("success", `Opened ${file.name}`);
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
    graphStore.set({ name });
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
    openWorkflow(workflow, { name });
  } catch (err) {
    toast("error", `Cannot open “${name}”: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export function openDefaultWorkflow(undoable = true): void {
  openWorkflow(defaultWorkflow as unknown as Workflow, { name: "default", undoable });
}

/** First load: the auto-saved graph, or the default workflow on a first visit. */
export function openInitialWorkflow(): void {
  const saved = localStorage.getItem(AUTOSAVE_KEY);
  if (saved) {
    try {
      const workflow = asOurWorkflow(JSON.parse(saved));
      if (workflow) {
        openWorkflow(workflow, { name: localStorage.getItem(NAME_KEY) ?? "untitled", undoable: false });
        return;
      }
    } catch {
      // fall through to the default workflow
    }
  }
  openDefaultWorkflow(false);
}

/** Save the graph in localStorage shortly after each change. */
export function startAutosave(): () => void {
  let timer: number | undefined;
  let last = "";
  const save = () => {
    if (!catalogStore.get().catalog) return;
    const text = JSON.stringify(currentWorkflow());
    if (text !== last) {
      localStorage.setItem(AUTOSAVE_KEY, text);
      last = text;
    }
    localStorage.setItem(NAME_KEY, graphStore.get().name);
  };
  const unsubscribe = graphStore.subscribe(() => {
    window.clearTimeout(timer);
    timer = window.setTimeout(save, 300);
  });
  const flush = () => save();
  window.addEventListener("beforeunload", flush);
  return () => {
    unsubscribe();
    window.removeEventListener("beforeunload", flush);
  };
}
