// The graph on the canvas as React Flow nodes and edges: what each kind of node holds, its sockets
// (from the catalog, a subgraph definition, or the wire through a reroute), and the checks that need
// only the catalog (no server round trip). workflowJson.ts converts it to and from our JSON.
//
// One "level" is the graph on the canvas: the workflow itself, or a subgraph definition being
// edited. Besides the engine's nodes a level has editor-only nodes: reroute points, group frames
// and, inside a subgraph, its input and output panels.
import type { Edge, Node } from "@xyflow/react";
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
  SubgraphDef,
  SubgraphInputRef,
  SubgraphIo,
} from "./types";

export interface GraphNodeData extends Record<string, unknown> {
  /** The node type (catalog key, or "Subgraph"). */
  type: string;
  title?: string;
  mode: NodeMode;
  /** Widget values; kept while a value input is linked so unlinking restores them. */
  values: Record<string, Constant>;
  control: Record<string, ControlAfterGenerate>;
  /** Inputs the declaration does not have, kept so that saving does not lose them. */
  extraInputs?: Record<string, InputValue>;
  /** Other per-node `ui` keys, kept as they were. */
  extraUi?: Record<string, unknown>;
  size?: [number, number];
  /** Header and body colour chosen by the user. */
  color?: string;
  collapsed?: boolean;
  /** A pinned node cannot be moved or resized. */
  pinned?: boolean;
  /** For a node of type "Subgraph": the id of its definition, and the declaration made from it. */
  subgraph?: string;
  subgraphDecl?: NodeDecl;
  /** For a type missing from the catalog: the sockets we can infer from the workflow. */
  missingDecl?: NodeDecl;
}

export interface RerouteData extends Record<string, unknown> {
  /** The type of the wire passing through (of what feeds it), "*" while nothing does. */
  wireType: string;
}

export interface FrameData extends Record<string, unknown> {
  title: string;
  color: string;
}

/** Inside a subgraph: the panel of its inputs (side "in", they are outputs on the canvas) or outputs. */
export interface IoData extends Record<string, unknown> {
  side: "in" | "out";
  items: SubgraphIo[];
}

export type GraphNode = Node<GraphNodeData, "graph">;
export type RerouteNode = Node<RerouteData, "reroute">;
export type FrameNode = Node<FrameData, "frame">;
export type IoNode = Node<IoData, "sgio">;
export type EditorNode = GraphNode | RerouteNode | FrameNode | IoNode;
export type GraphEdge = Edge<{ type: string }>;

export interface Graph {
  nodes: EditorNode[];
  edges: GraphEdge[];
}

export const NODE_TYPE = "graph";
export const SUBGRAPH_TYPE = "Subgraph";
/** Ids of a subgraph's input and output panels, and the socket that adds an input or output. */
export const IO_IN = "__in";
export const IO_OUT = "__out";
export const ADD_SOCKET = "__add";
export const REROUTE_IN = "in";
export const REROUTE_OUT = "out";
export const FRAME_COLORS = ["#4a5d7a", "#5d4a7a", "#4a7a5d", "#7a6a4a", "#7a4a4a", "#4a6f7a", "#6b6b6b"];

export const isGraphNode = (n: Node): n is GraphNode => n.type === NODE_TYPE;
export const isReroute = (n: Node): n is RerouteNode => n.type === "reroute";
export const isFrame = (n: Node): n is FrameNode => n.type === "frame";
export const isIoNode = (n: Node): n is IoNode => n.type === "sgio";

export function isLink(value: unknown): value is LinkRef {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as LinkRef).node === "string" &&
    typeof (value as LinkRef).output === "string"
  );
}

export function isSubgraphInput(value: unknown): value is SubgraphInputRef {
  return typeof value === "object" && value !== null && typeof (value as SubgraphInputRef).subgraph_input === "string";
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

/** The declaration of a graph node: its subgraph's, the catalog's, or inferred for an unknown type. */
export function declOf(catalog: Catalog | null, data: GraphNodeData): NodeDecl | undefined {
  return data.subgraphDecl ?? catalog?.nodes[data.type] ?? data.missingDecl;
}

export const ANY = "*";

/** Sockets of any node on the canvas (a reroute passes its wire's type; panels list the subgraph's). */
export function nodeDecl(catalog: Catalog | null, node: EditorNode | undefined): NodeDecl | undefined {
  if (!node) return undefined;
  switch (node.type) {
    case "graph":
      return declOf(catalog, node.data);
    case "reroute":
      return {
        name: "Reroute",
        inputs: [{ name: REROUTE_IN, type: node.data.wireType }],
        outputs: [{ name: REROUTE_OUT, type: node.data.wireType }],
      };
    case "sgio": {
      const items = [...node.data.items.map((i) => ({ name: i.name, type: i.type })), { name: ADD_SOCKET, type: ANY }];
      return node.data.side === "in"
        ? { name: "Subgraph inputs", inputs: [], outputs: items }
        : { name: "Subgraph outputs", inputs: items, outputs: [] };
    }
    default:
      return undefined;
  }
}

export function nextNodeId(nodes: { id: string }[], reserved: Iterable<string> = []): string {
  let max = 0;
  for (const id of [...nodes.map((n) => n.id), ...reserved]) {
    const n = Number(id);
    if (Number.isInteger(n) && n > max) max = n;
  }
  return String(max + 1);
}

/** A fresh editor-only id ("r3", "g2") that no node of the level uses. */
export function nextLocalId(prefix: string, nodes: { id: string }[]): string {
  const taken = new Set(nodes.map((n) => n.id));
  let i = 1;
  while (taken.has(`${prefix}${i}`)) i++;
  return `${prefix}${i}`;
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

/** Inputs of a subgraph definition as the outer node's declaration: a value input takes its widget
 * (range, choices) from the first inner input it feeds. */
export function subgraphDecl(id: string, def: SubgraphDef, catalog: Catalog, defs: Record<string, SubgraphDef> = {}): NodeDecl {
  const fed = new Map<string, InputDecl>();
  for (const node of Object.values(def.nodes ?? {})) {
    const decl = node.type === SUBGRAPH_TYPE ? undefined : catalog.nodes[node.type];
    for (const [name, value] of Object.entries(node.inputs ?? {})) {
      if (!isSubgraphInput(value) || fed.has(value.subgraph_input)) continue;
      const inner =
        decl?.inputs.find((i) => i.name === name) ??
        (node.subgraph && defs[node.subgraph] && node.subgraph !== id
          ? subgraphDecl(node.subgraph, defs[node.subgraph], catalog, {}).inputs.find((i) => i.name === name)
          : undefined);
      if (inner) fed.set(value.subgraph_input, inner);
    }
  }
  const inputs: InputDecl[] = (def.inputs ?? []).map((io) => {
    const inner = fed.get(io.name);
    const base: InputDecl = inner && inner.type === io.type ? { ...inner } : { name: io.name, type: io.type };
    base.name = io.name;
    base.required = io.default === undefined;
    if (io.default !== undefined) base.default = io.default;
    delete base.tooltip;
    return base;
  });
  return {
    name: SUBGRAPH_TYPE,
    display_name: def.name || id,
    category: "subgraph",
    description: def.description,
    inputs,
    outputs: (def.outputs ?? []).map((o) => ({ name: o.name, type: o.type })),
  };
}

export function ioNode(side: "in" | "out", items: SubgraphIo[], at?: [number, number]): IoNode {
  return {
    id: side === "in" ? IO_IN : IO_OUT,
    type: "sgio",
    position: Array.isArray(at) ? { x: at[0], y: at[1] } : { x: NaN, y: NaN },
    data: { side, items: items.map((i) => ({ ...i })) },
    deletable: false,
  };
}

export function frameNode(id: string, position: { x: number; y: number }, size: [number, number], title: string, color?: string): FrameNode {
  return {
    id,
    type: "frame",
    position,
    width: size[0],
    height: size[1],
    zIndex: -1,
    dragHandle: ".lg-frame-title",
    data: { title, color: color ?? FRAME_COLORS[0] },
  };
}

export function frameSize(frame: FrameNode): [number, number] {
  return [frame.width ?? frame.measured?.width ?? 400, frame.height ?? frame.measured?.height ?? 300];
}
