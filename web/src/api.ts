// HTTP client for the latentgraph server API (docs/protocol.md).
import type { Catalog, CheckpointDetails, GraphError, Job, QueueState, SubgraphDef, SweepDoc, SweepState, Workflow } from "./types";

const TOKEN_KEY = "latentgraph.token";

/** The access token for a server bound to a non-loopback address: `?token=` in the page URL. */
function readToken(): string | null {
  const fromUrl = new URLSearchParams(window.location.search).get("token");
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    return fromUrl;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

const token = readToken();

/** A failed request; `errors` holds the graph errors of a 400 from validate/queue/import. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly errors: GraphError[] = [],
  ) {
    super(message);
  }
}

/** URL of the API (or websocket) path, relative to the page so a path prefix keeps working. */
export function apiUrl(path: string): string {
  return new URL(path.replace(/^\//, ""), document.baseURI).toString();
}

/** URL usable in <img src>: server-given image URLs carry the token as a query parameter. */
export function mediaUrl(url: string): string {
  if (url.startsWith("data:")) return url;
  const full = new URL(url.replace(/^\//, ""), document.baseURI);
  if (token) full.searchParams.set("token", token);
  return full.toString();
}

export function websocketUrl(): string {
  const url = new URL("ws", document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (token) url.searchParams.set("token", token);
  return url.toString();
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload: BodyInit | undefined;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(apiUrl(path), { method, headers, body: payload });
  } catch (err) {
    throw new ApiError(`cannot reach the server (${String(err)})`, 0);
  }
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const obj = (data && typeof data === "object" ? data : {}) as {
      error?: string;
      message?: string;
      errors?: GraphError[];
    };
    const errors = Array.isArray(obj.errors) ? obj.errors : [];
    const message =
      obj.error ?? obj.message ?? errors[0]?.message ?? (typeof data === "string" && data) ?? "";
    throw new ApiError(message || `${method} ${path}: HTTP ${response.status}`, response.status, errors);
  }
  return data as T;
}

const enc = encodeURIComponent;

export const api = {
  nodes: () => request<Catalog>("GET", "/api/nodes"),
  checkpoints: () => request<{ checkpoints: string[]; details?: Record<string, CheckpointDetails> }>("GET", "/api/checkpoints"),
  inputs: () => request<{ images: string[] }>("GET", "/api/inputs"),
  inputImageUrl: (name: string) => mediaUrl(`/api/inputs/${enc(name)}`),

  validate: (workflow: Workflow) =>
    request<{ valid: boolean; errors: GraphError[] }>("POST", "/api/validate", { workflow }),
  queue: (workflow: Workflow, clientId: string) =>
    request<{ job_id: string; position: number }>("POST", "/api/queue", { workflow, client_id: clientId }),
  queueState: () => request<QueueState>("GET", "/api/queue"),
  cancel: (jobId: string) => request<unknown>("DELETE", `/api/queue/${enc(jobId)}`),
  clearQueue: () => request<unknown>("DELETE", "/api/queue"),
  interrupt: (jobId?: string) => request<unknown>("POST", "/api/interrupt", jobId ? { job_id: jobId } : undefined),
  sweep: (workflow: Workflow, sweep: SweepDoc, clientId: string, confirm = false) =>
    request<{ sweep_id: string; job_ids: string[]; total: number }>("POST", "/api/sweep", { workflow, sweep, client_id: clientId, confirm }),
  sweepState: (sweepId: string) => request<SweepState>("GET", `/api/sweeps/${enc(sweepId)}`),
  cancelSweep: (sweepId: string) => request<{ cancelled: string[] }>("DELETE", `/api/sweeps/${enc(sweepId)}`),
  history: (limit = 20) => request<{ jobs: Job[] }>("GET", `/api/jobs?limit=${limit}`),
  historyJob: (jobId: string) => request<Job>("GET", `/api/jobs/${enc(jobId)}`),

  upload: (file: Blob, filename: string) => {
    const form = new FormData();
    form.append("image", file, filename);
    return request<{ name: string }>("POST", "/api/upload", form);
  },
  importFile: (file: Blob, filename: string) => {
    const form = new FormData();
    form.append("file", file, filename);
    return request<{ workflow: Workflow; sweep?: SweepDoc }>("POST", "/api/import", form);
  },

  listWorkflows: () => request<{ workflows: { name: string; modified?: number | string }[] }>("GET", "/api/workflows"),
  getWorkflow: (name: string) => request<Workflow | { workflow: Workflow }>("GET", `/api/workflows/${enc(name)}`),
  saveWorkflow: (name: string, workflow: Workflow) => request<unknown>("PUT", `/api/workflows/${enc(name)}`, workflow),
  deleteWorkflow: (name: string) => request<unknown>("DELETE", `/api/workflows/${enc(name)}`),

  listComponents: () => request<{ components: { name: string; modified?: number | string }[] }>("GET", "/api/components"),
  getComponent: (name: string) => request<{ name: string; definition: SubgraphDef }>("GET", `/api/components/${enc(name)}`),
  saveComponent: (name: string, definition: SubgraphDef) =>
    request<{ name: string }>("PUT", `/api/components/${enc(name)}`, { definition }),
  deleteComponent: (name: string) => request<unknown>("DELETE", `/api/components/${enc(name)}`),
};
