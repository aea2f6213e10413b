// What the server tells us about running jobs: which node executes, progress, previews, images,
// cached nodes, errors, the queue and the history. Kept apart from the graph (not undoable, not saved).
import { api } from "../api";
import { createStore } from "../store";
import type { GraphError, Job, JobImage, QueueState, ServerEvent } from "../types";
import type { ConnectionState } from "../ws";
import { toast } from "./uiState";

export interface NodeErrors {
  /** Messages about the node as a whole. */
  node: string[];
  /** Messages about one input, by input name. */
  inputs: Record<string, string[]>;
}

interface RunState {
  connection: ConnectionState;
  /** The job of ours the server is running now. */
  runningJob: string | null;
  executing: string | null;
  progress: Record<string, { step: number; total: number }>;
  previews: Record<string, string>;
  images: Record<string, JobImage[]>;
  cached: Record<string, boolean>;
  errors: Record<string, NodeErrors>;
  /** Errors not tied to a node of the current graph. */
  globalErrors: GraphError[];
  queue: QueueState;
  history: Job[];
}

export const runStore = createStore<RunState>({
  connection: "connecting",
  runningJob: null,
  executing: null,
  progress: {},
  previews: {},
  images: {},
  cached: {},
  errors: {},
  globalErrors: [],
  queue: { running: null, pending: [] },
  history: [],
});

const OUR_JOBS_KEY = "latentgraph.ourJobs";

/** Jobs queued from this tab: only their events are drawn on the graph. Kept in sessionStorage so
 * that a job still running when the page reloads keeps showing its progress and images. */
const ourJobs = new Set<string>(readOurJobs());

function readOurJobs(): string[] {
  try {
    const ids: unknown = JSON.parse(sessionStorage.getItem(OUR_JOBS_KEY) ?? "[]");
    return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === "string") : [];
  } catch {
    return [];
  }
}

function saveOurJobs(): void {
  sessionStorage.setItem(OUR_JOBS_KEY, JSON.stringify([...ourJobs].slice(-50)));
}
/** Events of jobs not (yet) known to be ours: the queue reply may arrive after the first events. */
const pendingEvents = new Map<string, ServerEvent[]>();

export function claimJob(jobId: string): void {
  ourJobs.add(jobId);
  saveOurJobs();
  const buffered = pendingEvents.get(jobId) ?? [];
  pendingEvents.delete(jobId);
  buffered.forEach(applyJobEvent);
}

export function setConnection(connection: ConnectionState): void {
  runStore.set({ connection });
  if (connection === "open") void refreshQueue();
}

export function handleEvent(event: ServerEvent): void {
  if (event.type === "queue") {
    scheduleQueueRefresh();
    return;
  }
  if (event.type === "finished" || event.type === "queued") scheduleQueueRefresh();
  if (event.type === "finished") void refreshHistory();
  const jobId = event.job_id;
  if (!jobId) return;
  if (ourJobs.has(jobId)) {
    applyJobEvent(event);
  } else {
    const list = pendingEvents.get(jobId) ?? [];
    list.push(event);
    pendingEvents.set(jobId, list.slice(-500));
    while (pendingEvents.size > 20) pendingEvents.delete(pendingEvents.keys().next().value!);
  }
}

function applyJobEvent(event: ServerEvent): void {
  switch (event.type) {
    case "started":
      runStore.set({
        runningJob: event.job_id,
        executing: null,
        progress: {},
        cached: {},
        errors: {},
        globalErrors: [],
      });
      break;
    case "executing":
      runStore.set({ executing: event.node_id ?? null });
      break;
    case "cached": {
      const cached = { ...runStore.get().cached };
      for (const id of event.node_ids ?? []) cached[id] = true;
      runStore.set({ cached });
      break;
    }
    case "progress":
      runStore.set((s) => ({
        executing: event.node_id,
        runningJob: event.job_id,
        progress: { ...s.progress, [event.node_id]: { step: event.step, total: event.total } },
      }));
      break;
    case "preview":
      runStore.set((s) => ({ previews: { ...s.previews, [event.node_id]: event.image } }));
      break;
    case "executed":
      runStore.set((s) => {
        const next: Partial<RunState> = {};
        if (event.images?.length) next.images = { ...s.images, [event.node_id]: event.images };
        if (s.executing === event.node_id) next.executing = null;
        return next;
      });
      break;
    case "error": {
      const { type: _type, job_id: _job, ...error } = event;
      addErrors([error]);
      toast("error", error.message);
      break;
    }
    case "interrupted":
      toast("info", "Interrupted");
      break;
    case "finished":
      runStore.set((s) => ({
        runningJob: s.runningJob === event.job_id ? null : s.runningJob,
        executing: null,
        progress: {},
      }));
      ourJobs.delete(event.job_id);
      saveOurJobs();
      break;
    default:
      break;
  }
}

/** Show errors on their nodes and inputs; those without a node of the graph go to a banner. */
export function setErrors(errors: GraphError[], nodeIds: Set<string>): void {
  runStore.set({ errors: {}, globalErrors: [] });
  addErrors(errors, nodeIds);
}

function addErrors(errors: GraphError[], nodeIds?: Set<string>): void {
  const byNode: Record<string, NodeErrors> = { ...runStore.get().errors };
  const global: GraphError[] = [...runStore.get().globalErrors];
  for (const error of errors) {
    const id = error.node_id;
    if (id === null || id === undefined || (nodeIds && !nodeIds.has(id))) {
      global.push(error);
      continue;
    }
    const entry = byNode[id] ? { node: [...byNode[id].node], inputs: { ...byNode[id].inputs } } : { node: [], inputs: {} };
    if (error.input) entry.inputs[error.input] = [...(entry.inputs[error.input] ?? []), error.message];
    else entry.node.push(error.message);
    byNode[id] = entry;
  }
  runStore.set({ errors: byNode, globalErrors: global });
}

export function clearErrors(): void {
  runStore.set({ errors: {}, globalErrors: [] });
}

export function clearInputError(nodeId: string, input: string): void {
  const entry = runStore.get().errors[nodeId];
  if (!entry?.inputs[input]) return;
  const inputs = { ...entry.inputs };
  delete inputs[input];
  const errors = { ...runStore.get().errors };
  if (!entry.node.length && !Object.keys(inputs).length) delete errors[nodeId];
  else errors[nodeId] = { node: entry.node, inputs };
  runStore.set({ errors });
}

/** Forget run results of nodes (when a workflow is replaced). */
export function clearResults(): void {
  runStore.set({ executing: null, progress: {}, previews: {}, images: {}, cached: {}, errors: {}, globalErrors: [] });
}

let queueTimer: number | undefined;
function scheduleQueueRefresh(): void {
  window.clearTimeout(queueTimer);
  queueTimer = window.setTimeout(() => void refreshQueue(), 100);
}

export async function refreshQueue(): Promise<void> {
  try {
    const queue = await api.queueState();
    runStore.set({ queue: { running: queue.running ?? null, pending: queue.pending ?? [] } });
  } catch {
    // the connection indicator tells the user; the next event retries
  }
}

export async function refreshHistory(): Promise<void> {
  try {
    const { jobs } = await api.history(30);
    runStore.set({ history: jobs ?? [] });
  } catch {
    // as above
  }
}
