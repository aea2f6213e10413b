// Running the graph: queue it, show validation errors, then apply "control after generate".
import { api, ApiError } from "../api";
import { catalogStore } from "../catalog";
import { declOf, isGraphNode } from "../graphModel";
import type { ControlAfterGenerate, InputDecl } from "../types";
import { graphStore } from "./graphStore";
import { claimJob, clearErrors, refreshQueue, setErrors } from "./runState";
import { rootNodeIds } from "./subgraphs";
import { revealQueue, toast } from "./uiState";
import { currentWorkflow } from "./workflowIO";

/** Identifies this tab to the server (sent with each queued job). */
export const clientId = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;

const problems = (n: number) => (n === 1 ? "1 problem in the graph" : `${n} problems in the graph`);

/** Queue the graph `count` times (ComfyUI's batch count); seeds change between the jobs. */
export async function queueRuns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    if (!(await queueRun())) return;
  }
}

export async function queueRun(): Promise<boolean> {
  const workflow = currentWorkflow();
  try {
    const { job_id } = await api.queue(workflow, clientId);
    clearErrors();
    claimJob(job_id);
    revealQueue();
    applyControlAfterGenerate();
    void refreshQueue();
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.errors.length) {
      setErrors(err.errors, rootNodeIds());
      toast("error", err.errors.length === 1 ? err.errors[0].message : problems(err.errors.length));
    } else {
      toast("error", `Cannot queue: ${err instanceof Error ? err.message : String(err)}`);
    }
    return false;
  }
}

/** Ask the server to check the graph without running it; errors go on the nodes. */
export async function validateGraph(quiet = false): Promise<void> {
  try {
    const { valid, errors } = await api.validate(currentWorkflow());
    setErrors(errors ?? [], rootNodeIds());
    if (!quiet) toast(valid ? "success" : "error", valid ? "The graph is valid" : problems(errors.length));
  } catch (err) {
    if (!quiet) toast("error", `Cannot validate: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export function nextValue(input: InputDecl, value: number, mode: ControlAfterGenerate): number {
  const min = input.min ?? 0;
  // Seeds may be declared up to 2**64-1; JavaScript numbers are exact only up to 2**53-1.
  const max = Math.min(input.max ?? Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const step = input.step && input.step > 0 ? input.step : 1;
  switch (mode) {
    case "increment":
      return value + step > max ? min : value + step;
    case "decrement":
      return value - step < min ? max : value - step;
    case "randomize": {
      const span = max - min;
      const r = Math.floor(Math.random() * 2 ** 26) * 2 ** 27 + Math.floor(Math.random() * 2 ** 27);
      return min + (span >= Number.MAX_SAFE_INTEGER ? r : r % (span + 1));
    }
    default:
      return value;
  }
}

/** After queueing, change the values whose control is randomize/increment/decrement (as ComfyUI does). */
export function applyControlAfterGenerate(): void {
  const { catalog } = catalogStore.get();
  graphStore.set((s) => ({
    nodes: s.nodes.map((node) => {
      if (!isGraphNode(node)) return node;
      const decl = declOf(catalog, node.data);
      if (!decl || node.data.mode !== "active") return node;
      let values = node.data.values;
      for (const [name, mode] of Object.entries(node.data.control)) {
        const input = decl.inputs.find((i) => i.name === name);
        const value = values[name];
        if (!input || mode === "fixed" || typeof value !== "number") continue;
        values = { ...values, [name]: nextValue(input, value, mode) };
      }
      return values === node.data.values ? node : { ...node, data: { ...node.data, values } };
    }),
  }));
}

/** Interrupt the running job (with several running on a worker pool: that one). */
export async function interrupt(jobId?: string): Promise<void> {
  try {
    await api.interrupt(jobId);
  } catch (err) {
    toast("error", `Cannot interrupt: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export async function cancelJob(jobId: string): Promise<void> {
  try {
    await api.cancel(jobId);
  } catch (err) {
    toast("error", `Cannot cancel: ${err instanceof Error ? err.message : String(err)}`);
  }
  void refreshQueue();
}

export async function clearQueue(): Promise<void> {
  try {
    await api.clearQueue();
  } catch (err) {
    toast("error", `Cannot clear the queue: ${err instanceof Error ? err.message : String(err)}`);
  }
  void refreshQueue();
}
