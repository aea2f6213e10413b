// What the server tells us about running jobs: which node executes, progress, previews, images,
// cached nodes, errors, the queue and the history. Kept apart from the graph (not undoable, not saved).
//
// Node ids here are paths from the workflow's own level: inner node 2 of subgraph node 5 is "5/2",
// as the engine names it. Server events arrive in bursts while a graph runs; they are applied
// together once per animation frame, so a burst costs one render, not one per event.
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

/** Results shown on one open graph (each workflow tab has its own). */
export interface GraphResults {
  executing: string | null;
  progress: Record<string, { step: number; total: number }>;
  previews: Record<string, string>;
  images: Record<string, JobImage[]>;
  /** The job each node's images come from (kept with the tab, to show them again after a reload). */
  imageJobs: Record<string, string>;
  cached: Record<string, boolean>;
  errors: Record<string, NodeErrors>;
  /** Errors not tied to a node of the current graph. */
  globalErrors: GraphError[];
}

export interface GalleryImage {
  url: string;
  jobId: string;
  nodeId: string;
}

interface RunState extends GraphResults {
  connection: ConnectionState;
  /** The job of ours the server is running now. */
  runningJob: string | null;
  queue: QueueState;
  history: Job[];
  /** Images made by our jobs since the page opened, oldest first. */
  gallery: GalleryImage[];
}

export function emptyResults(): GraphResults {
  return { executing: null, progress: {}, previews: {}, images: {}, imageJobs: {}, cached: {}, errors: {}, globalErrors: [] };
}

export const runStore = createStore<RunState>({
  ...emptyResults(),
  connection: "connecting",
  runningJob: null,
  queue: { running: null, pending: [] },
  history: [],
  gallery: [],
});

export function currentResults(): GraphResults {
  const s = runStore.get();
  return {
    executing: s.executing,
    progress: s.progress,
    previews: s.previews,
    images: s.images,
    imageJobs: s.imageJobs,
    cached: s.cached,
    errors: s.errors,
    globalErrors: s.globalErrors,
  };
}

// ---- which jobs are ours, and which tab each belongs to ----

const OUR_JOBS_KEY = "latentgraph.ourJobs";

/** Jobs queued from this page, with the tab that queued them: only their events are drawn.
 * Kept in sessionStorage so a job still running when the page reloads keeps showing progress. */
const ourJobs = new Map<string, string>(readOurJobs());

function readOurJobs(): [string, string][] {
  try {
    const saved: unknown = JSON.parse(sessionStorage.getItem(OUR_JOBS_KEY) ?? "[]");
    if (!Array.isArray(saved)) return [];
    return saved.flatMap((entry): [string, string][] =>
      typeof entry === "string" ? [[entry, ""]] : Array.isArray(entry) && typeof entry[0] === "string" ? [[entry[0], String(entry[1] ?? "")]] : [],
    );
  } catch {
    return [];
  }
}

function saveOurJobs(): void {
  sessionStorage.setItem(OUR_JOBS_KEY, JSON.stringify([...ourJobs].slice(-50)));
}

/** Routes events of another tab's job to that tab (set by the tabs module). */
let tabRouter: { active(): string; apply(tabId: string, reduce: (r: GraphResults) => GraphResults): boolean } | null = null;

export function setTabRouter(router: typeof tabRouter): void {
  tabRouter = router;
}

/** Events of jobs not (yet) known to be ours: the queue reply may arrive after the first events. */
const pendingEvents = new Map<string, ServerEvent[]>();

export function claimJob(jobId: string): void {
  ourJobs.set(jobId, tabRouter?.active() ?? "");
  saveOurJobs();
  const buffered = pendingEvents.get(jobId) ?? [];
  pendingEvents.delete(jobId);
  runStore.batch(() => buffered.forEach(applyJobEvent));
}

/** The sweep module follows its sweeps' events (and catches up after a reconnection). */
let sweepHooks: { event(event: ServerEvent): void; reconnected(): void } | null = null;

export function onSweepEvents(event: (event: ServerEvent) => void, reconnected: () => void): void {
  sweepHooks = { event, reconnected };
}

export function setConnection(connection: ConnectionState): void {
  runStore.set({ connection });
  if (connection === "open") {
    void refreshQueue();
    sweepHooks?.reconnected();
  }
}

// ---- events, applied once per frame ----

let queued: ServerEvent[] = [];
let flushScheduled = false;

export function handleEvent(event: ServerEvent): void {
  queued.push(event);
  if (flushScheduled) return;
  flushScheduled = true;
  // requestAnimationFrame does not run in a hidden tab: the timer then takes over.
  const timer = window.setTimeout(flushEvents, 100);
  window.requestAnimationFrame(() => {
    window.clearTimeout(timer);
    flushEvents();
  });
}

export function flushEvents(): void {
  flushScheduled = false;
  const events = queued;
  queued = [];
  if (events.length) runStore.batch(() => events.forEach(dispatchEvent));
}

function dispatchEvent(event: ServerEvent): void {
  if (event.type === "queue") {
    scheduleQueueRefresh();
    return;
  }
  if (event.type.startsWith("sweep_")) {
    sweepHooks?.event(event);
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

/** The subgraph nodes around an inner node: "5/3/1" -> ["5", "5/3"]. */
function ancestors(path: string): string[] {
  const parts = path.split("/");
  return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join("/"));
}

/** How one event changes the results of the graph it belongs to. */
function reduceResults(r: GraphResults, event: ServerEvent): GraphResults {
  switch (event.type) {
    case "started":
      return { ...r, executing: null, progress: {}, cached: {}, errors: {}, globalErrors: [] };
    case "executing": {
      // A node inside a subgraph runs: the subgraph node around it is not all from the cache.
      const outer = ancestors(event.node_id ?? "").filter((id) => r.cached[id]);
      if (!outer.length) return { ...r, executing: event.node_id ?? null };
      const cached = { ...r.cached };
      for (const id of outer) delete cached[id];
      return { ...r, executing: event.node_id ?? null, cached };
    }
    case "cached": {
      const cached = { ...r.cached };
      for (const id of event.node_ids ?? []) {
        cached[id] = true;
        for (const outer of ancestors(id)) cached[outer] = true;
      }
      return { ...r, cached };
    }
    case "progress":
      return { ...r, executing: event.node_id, progress: { ...r.progress, [event.node_id]: { step: event.step, total: event.total } } };
    case "preview":
      return { ...r, previews: { ...r.previews, [event.node_id]: event.image } };
    case "executed": {
      const next = { ...r };
      if (event.images?.length) {
        next.images = { ...r.images, [event.node_id]: event.images };
        next.imageJobs = { ...r.imageJobs, [event.node_id]: event.job_id };
      }
      if (r.executing === event.node_id) next.executing = null;
      return next;
    }
    case "error": {
      const { type: _type, job_id: _job, ...error } = event;
      return withErrors(r, [error]);
    }
    case "finished":
      return { ...r, executing: null, progress: {} };
    default:
      return r;
  }
}

function applyJobEvent(event: ServerEvent): void {
  const tab = ourJobs.get(event.job_id ?? "") ?? "";
  const reduce = (r: GraphResults) => reduceResults(r, event);
  if (!tabRouter || !tab || tab === tabRouter.active() || !tabRouter.apply(tab, reduce)) {
    runStore.set((s) => reduce(s));
  }
  switch (event.type) {
    case "started":
      runStore.set({ runningJob: event.job_id });
      break;
    case "progress":
      runStore.set({ runningJob: event.job_id });
      break;
    case "executed":
      if (event.images?.length) {
        const made = event.images.map((image) => ({ url: image.url, jobId: event.job_id, nodeId: event.node_id }));
        runStore.set((s) => ({ gallery: [...s.gallery, ...made].slice(-500) }));
      }
      break;
    case "error":
      toast("error", event.message);
      break;
    case "interrupted":
      toast("info", "Interrupted");
      break;
    case "finished":
      runStore.set((s) => ({ runningJob: s.runningJob === event.job_id ? null : s.runningJob }));
      ourJobs.delete(event.job_id);
      saveOurJobs();
      break;
    default:
      break;
  }
}

// ---- errors ----

/** Errors shown on their nodes and inputs. An error of an inner node ("5/2") is also shown on
 * each subgraph node around it, so it can be seen from every level. */
function withErrors(r: GraphResults, errors: GraphError[], rootIds?: Set<string>): GraphResults {
  const byNode: Record<string, NodeErrors> = { ...r.errors };
  const global: GraphError[] = [...r.globalErrors];
  const entry = (id: string) => {
    const old = byNode[id];
    byNode[id] = old ? { node: [...old.node], inputs: { ...old.inputs } } : { node: [], inputs: {} };
    return byNode[id];
  };
  for (const error of errors) {
    const id = error.node_id;
    if (id === null || id === undefined || (rootIds && !rootIds.has(id.split("/")[0]))) {
      global.push(error);
      continue;
    }
    const own = entry(id);
    if (error.input) own.inputs[error.input] = [...(own.inputs[error.input] ?? []), error.message];
    else own.node.push(error.message);
    for (const outer of ancestors(id)) entry(outer).node.push(`inside: ${error.message}`);
  }
  return { ...r, errors: byNode, globalErrors: global };
}

/** Show errors on their nodes; those without a node of the graph (`rootIds`) go to a banner. */
export function setErrors(errors: GraphError[], rootIds: Set<string>): void {
  runStore.set((s) => withErrors({ ...s, errors: {}, globalErrors: [] }, errors, rootIds));
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
  runStore.set(emptyResults());
}

export function setResults(results: GraphResults): void {
  runStore.set(results);
}

/** Show again the images a graph's nodes showed (after a reload): read their jobs from the history. */
export async function restoreImages(imageJobs: Record<string, string>): Promise<Record<string, JobImage[]>> {
  const byJob = new Map<string, string[]>();
  for (const [nodeId, jobId] of Object.entries(imageJobs)) byJob.set(jobId, [...(byJob.get(jobId) ?? []), nodeId]);
  const images: Record<string, JobImage[]> = {};
  await Promise.all(
    [...byJob].map(async ([jobId, nodeIds]) => {
      try {
        const job = await api.historyJob(jobId);
        for (const nodeId of nodeIds) {
          const found = (job.images ?? []).filter((image) => image.node_id === nodeId);
          if (found.length) images[nodeId] = found;
        }
      } catch {
        // the job left the history: nothing to show
      }
    }),
  );
  return images;
}

// ---- queue and history ----

let queueTimer: number | undefined;
function scheduleQueueRefresh(): void {
  window.clearTimeout(queueTimer);
  queueTimer = window.setTimeout(() => void refreshQueue(), 100);
}

export async function refreshQueue(): Promise<void> {
  try {
    const queue = await api.queueState();
    const running = queue.running ?? null;
    runStore.set({ queue: { running, running_jobs: queue.running_jobs ?? (running ? [running] : []), pending: queue.pending ?? [] } });
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
