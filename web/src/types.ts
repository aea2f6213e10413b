// Types of the documents exchanged with the server (docs/protocol.md).

/** A link from an input to an output of another node, by output name. */
export interface LinkRef {
  node: string;
  output: string;
}

export type Constant = number | string | boolean;
export type InputValue = Constant | LinkRef;

export type NodeMode = "active" | "muted" | "bypassed";

export type ControlAfterGenerate = "fixed" | "increment" | "decrement" | "randomize";

export interface WorkflowNodeUi {
  position?: [number, number];
  size?: [number, number];
  control_after_generate?: Record<string, ControlAfterGenerate>;
  [key: string]: unknown;
}

export interface WorkflowNode {
  type: string;
  title?: string;
  mode?: NodeMode;
  inputs: Record<string, InputValue>;
  ui?: WorkflowNodeUi;
}

export interface Viewport {
  x: number;
  y: number;
  zoom: number;
}

export interface Workflow {
  format: "latentgraph";
  version: 2;
  nodes: Record<string, WorkflowNode>;
  ui?: { viewport?: Viewport; [key: string]: unknown };
}

export interface InputDecl {
  name: string;
  type: string;
  required?: boolean;
  default?: Constant;
  min?: number;
  max?: number;
  step?: number;
  round?: number;
  multiline?: boolean;
  choices?: string[];
  choices_from?: string;
  image_upload?: boolean;
  control_after_generate?: boolean;
  tooltip?: string;
}

export interface OutputDecl {
  name: string;
  type: string;
  tooltip?: string;
}

export interface NodeDecl {
  name: string;
  display_name?: string;
  category?: string;
  description?: string;
  version?: number;
  output_node?: boolean;
  inputs: InputDecl[];
  outputs: OutputDecl[];
}

export interface Catalog {
  version: number;
  socket_types: string[];
  value_types: string[];
  nodes: Record<string, NodeDecl>;
}

export type ErrorKind =
  | "bad_format"
  | "unknown_type"
  | "unknown_input"
  | "missing_input"
  | "missing_node"
  | "missing_output"
  | "type_mismatch"
  | "cycle"
  | "bad_value"
  | "out_of_range"
  | "not_in_choices"
  | "no_output"
  | "unsupported"
  | "execution"
  | "interrupted"
  | string;

export interface GraphError {
  kind: ErrorKind;
  node_id: string | null;
  node_type?: string | null;
  input: string | null;
  message: string;
}

export type JobStatus = "pending" | "running" | "success" | "error" | "interrupted" | "cancelled";

export interface JobImage {
  id: string;
  node_id?: string;
  url: string;
}

export interface Job {
  job_id: string;
  status: JobStatus;
  created?: number | string | null;
  started?: number | string | null;
  finished?: number | string | null;
  workflow?: Workflow;
  images?: JobImage[];
  errors?: GraphError[];
  nodes?: Record<string, { status: "executed" | "cached"; seconds?: number }>;
}

export interface QueueState {
  running: Job | null;
  pending: Job[];
}

/** Websocket events (every message has `type` and `job_id`). */
export type ServerEvent =
  | { type: "queued"; job_id: string; position?: number }
  | { type: "started"; job_id: string }
  | { type: "executing"; job_id: string; node_id: string | null }
  | { type: "cached"; job_id: string; node_ids: string[] }
  | { type: "progress"; job_id: string; node_id: string; step: number; total: number }
  | { type: "preview"; job_id: string; node_id: string; image: string }
  | { type: "executed"; job_id: string; node_id: string; images?: JobImage[] }
  | ({ type: "error"; job_id: string } & GraphError)
  | { type: "interrupted"; job_id: string }
  | { type: "finished"; job_id: string; status: JobStatus }
  | { type: "queue"; job_id?: string | null; running: number; pending: number };
