// Conversion between our workflow format (docs/protocol.md) and React Flow's nodes and edges,
// plus the checks that need only the catalog (no server round trip).
import type { Edge, Node, Viewport as FlowViewport } from "@xyflow/react";
import { choicesFor, defaultValue, isSocketInput, typeColor } from "./catalog";
import type {
  Catalog,
  Constant,
  ControlAfterGenerate,
  InputDecl,
  InputValue,
  LinkRef,
  NodeDecl,
  NodeMode,
  Workflow,
  WorkflowNode,
} from "./types";

export interface GraphNodeData extends Record<string, unknown> {
  /** The node type (catalog key). */
  type: string;
  title?: string;
  mode: NodeMode;
  /** Widget values; kept while a value input is linked so unlinking restores them. */
  values: Record<string, Constant>;
  control: Record<string, ControlAfterGenerate>;
  /** Inputs the catalog does not declare, kept so that saving does not lose them. */
  extraInputs?: Record<string, InputValue>;
  /** Other per-node `ui` keys, kept as they were. */
  extraUi?: Record<string, unknown>;
  size?: [number, number];
  /** For a type missing from the catalog: the sockets we can infer from the workflow. */
  missingDecl?: NodeDecl;
}

export type GraphNode = Node<GraphNodeData, "graph">;
export type GraphEdge = Edge<{ type: string }>;

export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export const NODE_TYPE = "graph";

export function isLink(value: unknown): value is LinkRef {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as LinkRef).node === "string" &&
    typeof (value as LinkRef).output === "string"
  );
}

export function edgeId(target: string, targetHandle: string): string {
  return `${target}:${targetHandle}`;
}

export function makeEdge(source: string, output: string, target: string, input: string, type: string): GraphEdge {
  return {
    id: edgeId(target, input),
    source,
    sourceHandle: output,
    target,
    targetHandle: input,
    data: { type },
    style: { stroke: typeColor(type) },
  };
}

/** The declaration of a node: from the catalog, or inferred for an unknown type. */
export function declOf(catalog: Catalog | null, data: GraphNodeData): NodeDecl | undefined {
  return catalog?.nodes[data.type] ?? data.missingDecl;
}

export function nextNodeId(nodes: { id: string }[], reserved: Iterable<string> = []): string {
  let max = 0;
  for (const id of [...nodes.map((n) => n.id), ...reserved]) {
    const n = Number(id);
    if (Number.isInteger(n) && n > max) max = n;
  }
  return String(max + 1);
}

export function newNodeData(decl: NodeDecl, catalog: Catalog, dynamicChoices: Record<string, string[]>): GraphNodeData {
  const values: Record<string, Constant> = {};
  const control: Record<string, ControlAfterGenerate> = {};
  for (const input of decl.inputs) {
    if (isSocketInput(catalog, input)) continue;
    values[input.name] = defaultValue(input, dynamicChoices);
    if (input.control_after_generate) control[input.name] = "randomize";
  }
  return { type: decl.name, mode: "active", values, control };
}

/** A problem with a widget value that the catalog alone can tell, or null. */
export function checkValue(input: InputDecl, value: unknown, dynamicChoices: Record<string, string[]>): string | null {
  switch (input.type) {
    case "INT":
    case "FLOAT": {
      if (typeof value !== "number" || !Number.isFinite(value)) return "not a number";
      if (input.type === "INT" && !Number.isInteger(value)) return "must be an integer";
      if (input.min !== undefined && value < input.min) return `${value} is below the minimum ${input.min}`;
      if (input.max !== undefined && value > input.max) return `${value} is above the maximum ${input.max}`;
      return null;
    }
    case "BOOLEAN":
      return typeof value === "boolean" ? null : "not a boolean";
    case "STRING":
      return typeof value === "string" ? null : "not a string";
    case "COMBO": {
      const choices = choicesFor(input, dynamicChoices);
      if (choices.length && !choices.includes(String(value))) return `'${String(value)}' is not one of the choices`;
      return null;
    }
    default:
      return null;
  }
}

export interface LoadedGraph extends Graph {
  viewport?: FlowViewport;
  /** What did not fit the catalog (unknown types, inputs, outputs), for the user to see. */
  problems: string[];
}

/** Build React Flow nodes and edges from a workflow, checking it against the catalog. */
export function workflowToGraph(
  workflow: Workflow,
  catalog: Catalog,
  dynamicChoices: Record<string, string[]>,
): LoadedGraph {
  const problems: string[] = [];
  const entries = Object.entries(workflow.nodes ?? {});
  const inferred = inferMissingDecls(workflow, catalog);
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];

  for (const [id, wn] of entries) {
    const decl = catalog.nodes[wn.type] ?? inferred[id];
    if (!catalog.nodes[wn.type]) problems.push(`node ${id}: unknown node type '${wn.type}'`);
    const known = !!catalog.nodes[wn.type];
    const values: Record<string, Constant> = {};
    const extraInputs: Record<string, InputValue> = {};
    const given = wn.inputs ?? {};

    for (const input of decl.inputs) {
      const value = given[input.name];
      const socket = known ? isSocketInput(catalog, input) : isLink(value);
      if (!socket) {
        values[input.name] = value === undefined || isLink(value) ? defaultValue(input, dynamicChoices) : value;
      }
    }
    for (const [name, value] of Object.entries(given)) {
      if (!decl.inputs.some((i) => i.name === name)) {
        extraInputs[name] = value;
        problems.push(`node ${id} (${wn.type}): unknown input '${name}'`);
      }
    }

    const ui = { ...(wn.ui ?? {}) };
    const position = ui.position;
    const size = ui.size;
    const control: Record<string, ControlAfterGenerate> = {};
    for (const input of decl.inputs) {
      if (!input.control_after_generate) continue;
      control[input.name] = ui.control_after_generate?.[input.name] ?? "fixed";
    }
    delete ui.position;
    delete ui.size;
    delete ui.control_after_generate;

    const data: GraphNodeData = { type: wn.type, mode: wn.mode ?? "active", values, control };
    if (wn.title) data.title = wn.title;
    if (Object.keys(extraInputs).length) data.extraInputs = extraInputs;
    if (Object.keys(ui).length) data.extraUi = ui;
    if (Array.isArray(size)) data.size = [size[0], size[1]];
    if (!known) data.missingDecl = decl;
    nodes.push({
      id,
      type: NODE_TYPE,
      position: Array.isArray(position) ? { x: position[0], y: position[1] } : { x: NaN, y: NaN },
      data,
    });
  }

  // Links, after all nodes exist.
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (const [id, wn] of entries) {
    for (const [name, value] of Object.entries(wn.inputs ?? {})) {
      if (!isLink(value)) continue;
      const source = byId.get(value.node);
      if (!source) {
        problems.push(`node ${id}: input '${name}' links to missing node ${value.node}`);
        continue;
      }
      const sourceDecl = declOf(catalog, source.data);
      const output = sourceDecl?.outputs.find((o) => o.name === value.output);
      if (!output) {
        problems.push(`node ${id}: input '${name}' links to missing output '${value.output}' of node ${value.node}`);
        continue;
      }
      const targetDecl = declOf(catalog, byId.get(id)!.data);
      const input = targetDecl?.inputs.find((i) => i.name === name);
      if (!input) continue; // kept in extraInputs
      if (input.type !== output.type && input.type !== "*" && output.type !== "*") {
        problems.push(`node ${id}: input '${name}' (${input.type}) is linked to a ${output.type} output`);
      }
      edges.push(makeEdge(value.node, value.output, id, name, output.type));
    }
  }

  layoutUnplaced(nodes, edges, catalog);
  const vp = workflow.ui?.viewport;
  const viewport =
    vp && [vp.x, vp.y, vp.zoom].every((v) => typeof v === "number" && Number.isFinite(v)) ? { ...vp } : undefined;
  return { nodes, edges, viewport, problems };
}

function constantType(value: unknown): string {
  if (typeof value === "number") return Number.isInteger(value) ? "INT" : "FLOAT";
  return typeof value === "boolean" ? "BOOLEAN" : "STRING";
}

/** For node types missing from the catalog, infer sockets from the workflow so links survive. */
function inferMissingDecls(workflow: Workflow, catalog: Catalog): Record<string, NodeDecl> {
  const result: Record<string, NodeDecl> = {};
  const nodes = workflow.nodes ?? {};
  for (const [id, wn] of Object.entries(nodes)) {
    if (catalog.nodes[wn.type]) continue;
    const inputs: InputDecl[] = Object.entries(wn.inputs ?? {}).map(([name, value]) => {
      if (!isLink(value)) return { name, type: constantType(value) };
      const source = nodes[value.node];
      const sourceOut = source && catalog.nodes[source.type]?.outputs.find((o) => o.name === value.output);
      return { name, type: sourceOut?.type ?? "*" };
    });
    const outputs = new Map<string, string>();
    for (const other of Object.values(nodes)) {
      for (const [name, value] of Object.entries(other.inputs ?? {})) {
        if (!isLink(value) || value.node !== id) continue;
        const target = catalog.nodes[other.type]?.inputs.find((i) => i.name === name);
        outputs.set(value.output, target?.type ?? "*");
      }
    }
    result[id] = {
      name: wn.type,
      display_name: wn.type,
      category: "missing",
      inputs,
      outputs: [...outputs].map(([name, type]) => ({ name, type })),
    };
  }
  return result;
}

/** Give nodes without a saved position a place: columns by depth in the graph. */
function layoutUnplaced(nodes: GraphNode[], edges: GraphEdge[], catalog: Catalog): void {
  const unplaced = nodes.filter((n) => !Number.isFinite(n.position.x) || !Number.isFinite(n.position.y));
  if (!unplaced.length) return;
  const incoming = new Map<string, string[]>();
  for (const e of edges) incoming.set(e.target, [...(incoming.get(e.target) ?? []), e.source]);
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0; // a cycle: validation will report it
    visiting.add(id);
    const d = Math.max(-1, ...(incoming.get(id) ?? []).map(depthOf)) + 1;
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  const placed = nodes.filter((n) => !unplaced.includes(n));
  const left = placed.length ? Math.max(...placed.map((n) => n.position.x)) + 380 : 40;
  const columnY = new Map<number, number>();
  for (const node of unplaced) {
    const d = depthOf(node.id);
    const y = columnY.get(d) ?? 40;
    node.position = { x: left + d * 400, y };
    columnY.set(d, y + estimateHeight(node, catalog) + 40);
  }
}

function estimateHeight(node: GraphNode, catalog: Catalog): number {
  const decl = declOf(catalog, node.data);
  if (!decl) return 100;
  const multiline = decl.inputs.filter((i) => i.multiline).length;
  return 40 + 24 * (decl.inputs.length + decl.outputs.length) + 80 * multiline;
}

/** Serialise React Flow state to our workflow format. */
export function graphToWorkflow(
  nodes: GraphNode[],
  edges: GraphEdge[],
  catalog: Catalog | null,
  viewport?: FlowViewport,
): Workflow {
  const linkFor = new Map<string, LinkRef>();
  for (const e of edges) {
    if (e.sourceHandle && e.targetHandle) {
      linkFor.set(edgeId(e.target, e.targetHandle), { node: e.source, output: e.sourceHandle });
    }
  }
  const out: Record<string, WorkflowNode> = {};
  for (const node of nodes) {
    const data = node.data;
    const decl = declOf(catalog, data);
    const inputs: Record<string, InputValue> = {};
    const names = decl ? decl.inputs.map((i) => i.name) : Object.keys(data.values);
    for (const name of names) {
      const link = linkFor.get(edgeId(node.id, name));
      if (link) inputs[name] = link;
      else if (name in data.values) inputs[name] = data.values[name];
    }
    for (const [name, value] of Object.entries(data.extraInputs ?? {})) {
      if (!(name in inputs)) inputs[name] = value;
    }
    const wn: WorkflowNode = {
      type: data.type,
      ...(data.title ? { title: data.title } : {}),
      ...(data.mode && data.mode !== "active" ? { mode: data.mode } : {}),
      inputs,
    };
    const ui: WorkflowNode["ui"] = { ...(data.extraUi ?? {}) };
    ui.position = [Math.round(node.position.x), Math.round(node.position.y)];
    if (data.size) ui.size = [Math.round(data.size[0]), Math.round(data.size[1])];
    if (Object.keys(data.control).length) ui.control_after_generate = { ...data.control };
    wn.ui = ui;
    out[node.id] = wn;
  }
  const workflow: Workflow = { format: "latentgraph", version: 2, nodes: out };
  if (viewport) {
    workflow.ui = { viewport: { x: round2(viewport.x), y: round2(viewport.y), zoom: round4(viewport.zoom) } };
  }
  return workflow;
}

const round2 = (v: number) => Math.round(v * 100) / 100;
const round4 = (v: number) => Math.round(v * 10000) / 10000;

/** Accept a parsed JSON document as a workflow in our format (version 2), or return null. */
export function asOurWorkflow(doc: unknown): Workflow | null {
  if (!doc || typeof doc !== "object") return null;
  const wf = doc as Workflow;
  if (wf.format !== "latentgraph" || wf.version !== 2 || !wf.nodes || typeof wf.nodes !== "object") return null;
  return wf;
}

/**
 * Copy of a workflow fragment with fresh node ids (for paste). Links to nodes outside the
 * fragment are kept when `keepOutsideLinks` (and the node still exists), dropped otherwise.
 */
export function renumberFragment(
  fragment: Workflow,
  existingIds: string[],
  keepOutsideLinks: boolean,
): { workflow: Workflow; idMap: Map<string, string> } {
  const idMap = new Map<string, string>();
  const taken: string[] = [...existingIds];
  for (const id of Object.keys(fragment.nodes)) {
    const fresh = nextNodeId([], taken);
    idMap.set(id, fresh);
    taken.push(fresh);
  }
  const existing = new Set(existingIds);
  const nodes: Record<string, WorkflowNode> = {};
  for (const [id, wn] of Object.entries(fragment.nodes)) {
    const inputs: Record<string, InputValue> = {};
    for (const [name, value] of Object.entries(wn.inputs ?? {})) {
      if (!isLink(value)) inputs[name] = value;
      else if (idMap.has(value.node)) inputs[name] = { node: idMap.get(value.node)!, output: value.output };
      else if (keepOutsideLinks && existing.has(value.node)) inputs[name] = value;
    }
    nodes[idMap.get(id)!] = { ...wn, inputs, ui: wn.ui ? structuredClone(wn.ui) : undefined };
  }
  return { workflow: { format: "latentgraph", version: 2, nodes }, idMap };
}
