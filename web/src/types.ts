// Types of the documents exchanged with the server (docs/protocol.md).

/** A link from an input to an output of another node, by output name. */
export interface LinkRef {
  node: string;
  output: string;
}

export type Constant = number | string | boolean;
/** Inside a subgraph definition: the outer Subgraph node's input of this name. */
export interface SubgraphInputRef {
  subgraph_input: string;
}
export type InputValue = Constant | LinkRef | SubgraphInputRef;

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
  /** For a node of type "Subgraph": the id of its definition in the workflow's `subgraphs`. */
  subgraph?: string;
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

/** Editor-only layout of a graph (the workflow's or a subgraph definition's); the engine ignores it. */
export interface GraphUi {
  viewport?: Viewport;
  /** Titled coloured frames; `bounding` is [x, y, width, height]. */
  groups?: { title: string; color?: string; bounding: [number, number, number, number] }[];
  /** Reroute points by id; `from` is what feeds them (a node output, another reroute, a subgraph input). */
  reroutes?: Record<string, { position: [number, number]; from?: LinkRef | { reroute: string } | SubgraphInputRef }>;
  [key: string]: unknown;
}

export interface SubgraphIo {
  name: string;
  type: string;
  default?: Constant;
  /** A display name; `name` stays the key. */
  label?: string;
}

/** A subgraph definition (docs/protocol.md, "Subgraphs"). */
export interface SubgraphDef {
  name: string;
  description?: string;
  inputs: SubgraphIo[];
  outputs: (SubgraphIo & { from?: LinkRef | SubgraphInputRef })[];
  nodes: Record<string, WorkflowNode>;
  ui?: GraphUi & { io?: { in?: [number, number]; out?: [number, number] } };
  /** Only in a saved component: the definitions it uses (in a workflow they are all top-level). */
  subgraphs?: Record<string, SubgraphDef>;
}

export interface Workflow {
  format: "latentgraph";
  version: 2 | 3;
  nodes: Record<string, WorkflowNode>;
  subgraphs?: Record<string, SubgraphDef>;
  ui?: GraphUi;
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

/** What the server can tell of a checkpoint without loading it (GET /api/checkpoints "details"). */
export interface CheckpointDetails {
  family?: string;
  resolution?: [number, number];
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
  sweep_id?: string | null;
  /** Where it runs or ran, with a worker pool (`serve --ray`); null for the local runner. */
  worker?: string | null;
}

export interface QueueState {
  running: Job | null;
  /** Every running job (several with a worker pool), in the order they started. */
  running_jobs?: Job[];
  pending: Job[];
}

/** A sweep as the server takes it (docs/protocol.md, "Sweeps"). */
export interface SweepAxisDoc {
  inputs?: Record<string, Constant[]>;
  input?: string;
  values?: Constant[];
  label?: string;
  labels?: string[];
}

export interface SweepDoc {
  axes: SweepAxisDoc[];
  repeat?: number;
  seed_inputs?: string[];
}

/** A sweep error names its axis and value (0-based), where they apply. */
export interface SweepError extends GraphError {
  axis?: number | null;
  value?: number | null;
}

export interface SweepImage extends JobImage {
  filename?: string;
}

/** GET /api/sweeps/{id}. */
export interface SweepState {
  sweep_id: string;
  status: "queued" | "running" | "finished";
  total: number;
  counts: Record<string, number>;
  sweep?: SweepDoc;
  axes?: { name: string; labels: string[] }[];
  jobs?: { job_id: string; index: number; coords: number[]; values: Record<string, Constant>; status?: JobStatus; images?: JobImage[] }[];
  grid: SweepImage | null;
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
  | { type: "queue"; job_id?: string | null; running: number; pending: number }
  | { type: "sweep_queued"; job_id: null; sweep_id: string; job_ids: string[]; total: number }
  | { type: "sweep_progress"; job_id: string; sweep_id: string; done: number; total: number; counts: Record<string, number> }
  | { type: "sweep_finished"; job_id: null; sweep_id: string; counts: Record<string, number>; grid: SweepImage | null };
