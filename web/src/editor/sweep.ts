// Sweeps in the editor (docs/protocol.md, "Sweeps"): the sweep being built, kept in the workflow's
// `ui.sweep` (so it is saved, downloaded and auto-saved with the graph, per tab), turned into the
// server's sweep document, queued with POST /api/sweep and followed through its events.
//
// The draft keeps what the user typed (text per input, or the choices ticked for a combo or a
// boolean), not parsed values: parsing on every keystroke would rewrite the text being typed.
import { api, ApiError } from "../api";
import { catalogStore, isValueType } from "../catalog";
import { isLink } from "../graphModel";
import { createStore } from "../store";
import type { Constant, InputDecl, ServerEvent, SweepDoc, SweepError, SweepImage, Workflow } from "../types";
import { graphStore } from "./graphStore";
import { applyControlAfterGenerate, clientId } from "./run";
import { claimJob, clearErrors, onSweepEvents, refreshQueue, setErrors } from "./runState";
import { rootNodeIds } from "./subgraphs";
import { setPanel, toast } from "./uiState";
import { currentWorkflow } from "./workflowIO";

/** One swept input: "NODE.INPUT" (a node id of the workflow's own level) and its values. */
export interface DraftTarget {
  input: string;
  /** Numbers and text: comma-separated or one per line (text: one per line). */
  text: string;
  /** Combos and booleans: the choices ticked. */
  picked: string[];
}

export interface DraftAxis {
  /** Zipped: value k of each goes together. */
  targets: DraftTarget[];
  label?: string;
  labels?: string[];
}

export interface SweepDraft {
  axes: DraftAxis[];
  repeat: number;
  seed_inputs?: string[];
}

const EMPTY: SweepDraft = { axes: [], repeat: 1 };

// ---- the draft, in the open graph's ui ----

function asDraft(raw: unknown): SweepDraft {
  if (!raw || typeof raw !== "object") return EMPTY;
  const doc = raw as Partial<SweepDraft>;
  const axes = (Array.isArray(doc.axes) ? doc.axes : []).flatMap((axis): DraftAxis[] => {
    if (!axis || !Array.isArray(axis.targets)) return [];
    const targets = axis.targets.flatMap((t): DraftTarget[] =>
      t && typeof t.input === "string"
        ? [{ input: t.input, text: typeof t.text === "string" ? t.text : "", picked: Array.isArray(t.picked) ? t.picked.map(String) : [] }]
        : [],
    );
    return targets.length ? [{ ...axis, targets }] : [];
  });
  const repeat = typeof doc.repeat === "number" && doc.repeat >= 1 ? Math.round(doc.repeat) : 1;
  return { ...doc, axes, repeat };
}

/** The sweep of the open workflow (an empty one when it has none). */
export function currentDraft(ui: Record<string, unknown> | undefined = graphStore.get().extraUi): SweepDraft {
  return asDraft(ui?.sweep);
}

export function setDraft(draft: SweepDraft, options: { dirty?: boolean } = {}): void {
  graphStore.set((s) => {
    const extraUi = { ...(s.extraUi ?? {}) };
    if (draft.axes.length || draft.repeat > 1) extraUi.sweep = draft;
    else delete extraUi.sweep;
    return { extraUi: Object.keys(extraUi).length ? extraUi : undefined, dirty: options.dirty ?? true };
  });
}

export function updateDraft(change: (draft: SweepDraft) => SweepDraft): void {
  setDraft(change(currentDraft()));
}

/** What a new target starts with: the input's current value, so the user adds the others. */
export function newTarget(input: string, workflow: Workflow = currentWorkflow()): DraftTarget {
  const target = { input, text: "", picked: [] as string[] };
  const decl = targetDecl(input, workflow);
  const [node, name] = splitTarget(input);
  const value = workflow.nodes[node]?.inputs[name];
  if (!decl || value === undefined || isLink(value) || typeof value === "object") return target;
  if (decl.type === "COMBO" || decl.type === "BOOLEAN") target.picked = [String(value)];
  else target.text = String(value);
  return target;
}

export function addAxis(input = ""): void {
  updateDraft((d) => ({ ...d, axes: [...d.axes, { targets: [newTarget(input)] }] }));
}

/** "Sweep this input" (a node's context menu): a new axis over it, and the panel shows it. */
export function sweepInput(nodeId: string, input: string): void {
  addAxis(`${nodeId}.${input}`);
  setPanel("sweep");
}

// ---- targets: the inputs that can be swept ----

export function splitTarget(target: string): [string, string] {
  const dot = target.lastIndexOf(".");
  return dot < 0 ? [target, ""] : [target.slice(0, dot), target.slice(dot + 1)];
}

export function targetDecl(target: string, workflow: Workflow): InputDecl | undefined {
  const { catalog } = catalogStore.get();
  const [node, input] = splitTarget(target);
  const type = workflow.nodes[node]?.type;
  return type ? catalog?.nodes[type]?.inputs.find((i) => i.name === input) : undefined;
}

export interface TargetGroup {
  nodeId: string;
  label: string;
  inputs: InputDecl[];
}

const byId = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true });

/** The workflow's nodes with the value inputs that take a constant (not a wire), for the picker. */
export function targetGroups(workflow: Workflow): TargetGroup[] {
  const { catalog } = catalogStore.get();
  if (!catalog) return [];
  return Object.keys(workflow.nodes)
    .sort(byId)
    .flatMap((nodeId) => {
      const node = workflow.nodes[nodeId];
      const decl = catalog.nodes[node.type];
      if (!decl) return [];
      const inputs = decl.inputs.filter((i) => isValueType(catalog, i.type) && !isLink(node.inputs[i.name]));
      return inputs.length ? [{ nodeId, label: `#${nodeId} ${node.title || decl.display_name || decl.name}`, inputs }] : [];
    });
}

// ---- values ----

function numberValues(text: string, decl: InputDecl | undefined): Constant[] {
  const out: Constant[] = [];
  for (const token of text.split(/[\s,;]+/).filter(Boolean)) {
    // "1..4" counts up in steps of 1 (or the input's step); "0.5..2:0.5" in steps of 0.5.
    const range = /^(-?[\d.]+)\.\.(-?[\d.]+)(?::([\d.]+))?$/.exec(token);
    if (range) {
      const [from, to] = [Number(range[1]), Number(range[2])];
      const step = Number(range[3] ?? (decl?.type === "INT" ? 1 : decl?.step ?? 1));
      if ([from, to, step].every(Number.isFinite) && step > 0 && Math.abs(to - from) / step < 10_000) {
        const digits = Math.max(...[range[1], range[3] ?? ""].map((s) => s.split(".")[1]?.length ?? 0));
        for (let v = from; from <= to ? v <= to + 1e-9 : v >= to - 1e-9; v += from <= to ? step : -step) {
          out.push(Number(v.toFixed(digits)));
        }
        continue;
      }
    }
    const n = Number(token);
    out.push(Number.isFinite(n) ? n : token); // the server names what is wrong with a bad one
  }
  return out;
}

/** The values one target takes, from what the user typed or ticked. */
export function targetValues(target: DraftTarget, decl: InputDecl | undefined): Constant[] {
  switch (decl?.type) {
    case "COMBO":
      return target.picked;
    case "BOOLEAN":
      return target.picked.map((v) => v === "true");
    case "INT":
    case "FLOAT":
      return numberValues(target.text, decl);
    default: {
      const lines = target.text.split("\n");
      if (lines[lines.length - 1] === "") lines.pop();
      return lines;
    }
  }
}

export function axisSize(axis: DraftAxis, workflow: Workflow): number {
  return Math.max(0, ...axis.targets.map((t) => targetValues(t, targetDecl(t.input, workflow)).length));
}

export function jobCount(draft: SweepDraft, workflow: Workflow): number {
  if (!draft.axes.length) return 0;
  return draft.axes.reduce((n, axis) => n * axisSize(axis, workflow), 1) * Math.max(draft.repeat, 1);
}

/** The sweep document for the server, or the problems that keep it from being sent. */
export function buildSweep(draft: SweepDraft, workflow: Workflow): { doc: SweepDoc; problems: SweepError[] } {
  const problems: SweepError[] = [];
  const problem = (axis: number, message: string) => problems.push({ kind: "bad_format", node_id: null, input: null, message, axis, value: null });
  const axes = draft.axes.map((axis, a) => {
    const inputs: Record<string, Constant[]> = {};
    for (const target of axis.targets) {
      if (!target.input) problem(a, `axis ${a + 1}: pick the input to sweep`);
      else if (target.input in inputs) problem(a, `axis ${a + 1}: ${target.input} is swept twice`);
      else inputs[target.input] = targetValues(target, targetDecl(target.input, workflow));
      if (target.input && !inputs[target.input]?.length) problem(a, `axis ${a + 1}: ${target.input} has no values`);
    }
    const size = Math.max(0, ...Object.values(inputs).map((v) => v.length));
    return {
      inputs,
      ...(axis.label ? { label: axis.label } : {}),
      ...(axis.labels?.length === size ? { labels: axis.labels } : {}),
    };
  });
  if (!axes.length) problems.push({ kind: "bad_format", node_id: null, input: null, message: "add an axis to sweep", axis: null, value: null });
  const doc: SweepDoc = { axes, repeat: Math.max(1, draft.repeat) };
  if (draft.seed_inputs) doc.seed_inputs = draft.seed_inputs;
  return { doc, problems };
}

/** A sweep document (from a grid PNG) as a draft: inputs named by title become node ids. */
export function draftFromDoc(doc: SweepDoc, workflow: Workflow): SweepDraft {
  const idOf = (node: string) => {
    if (workflow.nodes[node]) return node;
    const titled = Object.keys(workflow.nodes).find((id) => workflow.nodes[id].title === node);
    return titled ?? node;
  };
  const axes = (doc.axes ?? []).map((axis): DraftAxis => {
    const inputs = axis.inputs ?? (axis.input ? { [axis.input]: axis.values ?? [] } : {});
    const targets = Object.entries(inputs).map(([name, values]): DraftTarget => {
      const [node, input] = splitTarget(name);
      const id = `${idOf(node)}.${input}`;
      const decl = targetDecl(id, workflow);
      const list = Array.isArray(values) ? values : [];
      if (decl?.type === "COMBO" || decl?.type === "BOOLEAN") return { input: id, text: "", picked: list.map(String) };
      const text = list.map(String).join(decl?.type === "INT" || decl?.type === "FLOAT" ? ", " : "\n");
      return { input: id, text, picked: [] };
    });
    return { targets, ...(axis.label ? { label: axis.label } : {}), ...(axis.labels ? { labels: axis.labels } : {}) };
  });
  return { axes, repeat: doc.repeat ?? 1, ...(doc.seed_inputs ? { seed_inputs: doc.seed_inputs } : {}) };
}

/** Open the sweep of an imported grid PNG in the panel. */
export function restoreSweep(doc: SweepDoc): void {
  setDraft(draftFromDoc(doc, currentWorkflow()), { dirty: graphStore.get().dirty });
  setPanel("sweep");
}

// ---- running it ----

export interface SweepRun {
  sweepId: string | null;
  status: "idle" | "sending" | "queued" | "running" | "finished";
  done: number;
  total: number;
  counts: Record<string, number>;
  grid: SweepImage | null;
  /** The problems of the last attempt: with `axis` (and `value`) they belong to an axis. */
  errors: SweepError[];
}

/** The sweep this page queued last, kept over a reload (its progress and grid come back). */
const SWEEP_KEY = "latentgraph.sweep";

export const sweepStore = createStore<SweepRun>({
  sweepId: sessionStorage.getItem(SWEEP_KEY),
  status: sessionStorage.getItem(SWEEP_KEY) ? "queued" : "idle",
  done: 0,
  total: 0,
  counts: {},
  grid: null,
  errors: [],
});

/** Queue the sweep; `confirm` queues one bigger than the server's limit (it asks first). */
export async function runSweep(confirm = false): Promise<void> {
  const workflow = currentWorkflow();
  const { doc, problems } = buildSweep(currentDraft(), workflow);
  if (problems.length) {
    sweepStore.set({ errors: problems });
    return;
  }
  sweepStore.set({ status: "sending", errors: [] });
  try {
    const answer = await api.sweep(workflow, doc, clientId, confirm);
    clearErrors();
    for (const jobId of answer.job_ids) claimJob(jobId);
    sweepStore.set({ sweepId: answer.sweep_id, status: "queued", done: 0, total: answer.total, counts: {}, grid: null, errors: [] });
    sessionStorage.setItem(SWEEP_KEY, answer.sweep_id);
    applyControlAfterGenerate();
    void refreshQueue();
    void refreshSweep(); // events that came before the answer
  } catch (err) {
    const errors = err instanceof ApiError ? (err.errors as SweepError[]) : [];
    // Errors of the workflow itself go on its nodes, as for Run; the sweep's stay in the panel.
    setErrors(errors.filter((e) => e.axis === null || e.axis === undefined), rootNodeIds());
    const message = err instanceof Error ? err.message : String(err);
    const shown = errors.length ? errors : [{ kind: "bad_format", node_id: null, input: null, message: `Cannot queue the sweep: ${message}` }];
    sweepStore.set({ status: sweepStore.get().sweepId ? sweepStore.get().status : "idle", errors: shown });
    if (sweepStore.get().status === "sending") sweepStore.set({ status: "idle" });
    toast("error", message);
  }
}

/** Cancel the sweep's pending jobs and interrupt the one of it that runs. */
export async function cancelSweep(): Promise<void> {
  const { sweepId } = sweepStore.get();
  if (!sweepId) return;
  try {
    await api.cancelSweep(sweepId);
    const queue = await api.queueState();
    const running = queue.running_jobs ?? (queue.running ? [queue.running] : []);
    for (const job of running) if (job.sweep_id === sweepId) await api.interrupt(job.job_id).catch(() => undefined);
  } catch (err) {
    toast("error", `Cannot cancel the sweep: ${err instanceof Error ? err.message : String(err)}`);
  }
  void refreshQueue();
}

export async function refreshSweep(): Promise<void> {
  const { sweepId } = sweepStore.get();
  if (!sweepId) return;
  try {
    const state = await api.sweepState(sweepId);
    if (sweepStore.get().sweepId !== sweepId) return;
    const done = Object.entries(state.counts ?? {}).reduce((n, [status, count]) => (status === "pending" || status === "running" ? n : n + count), 0);
    sweepStore.set({ status: state.status, done, total: state.total, counts: state.counts ?? {}, grid: state.grid });
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && sweepStore.get().sweepId === sweepId) {
      sessionStorage.removeItem(SWEEP_KEY); // not on this server (any more)
      sweepStore.set({ sweepId: null, status: "idle" });
    }
    // otherwise the events will tell
  }
}

function onEvent(event: ServerEvent): void {
  const run = sweepStore.get();
  if (!("sweep_id" in event) || event.sweep_id !== run.sweepId) return;
  if (event.type === "sweep_progress") {
    if (run.status !== "finished") sweepStore.set({ status: "running", done: event.done, total: event.total, counts: event.counts });
  } else if (event.type === "sweep_finished") {
    sweepStore.set({ status: "finished", done: run.total, counts: event.counts, grid: event.grid });
  }
}

onSweepEvents(onEvent, () => void refreshSweep());
