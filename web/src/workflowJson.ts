// Our workflow format (docs/protocol.md) as React Flow nodes and edges, and back, for one level at
// a time: the workflow's own, or a subgraph definition's being edited. Editor-only nodes (reroutes,
// group frames, a subgraph's panels) live in the JSON's `ui` parts; the engine sees direct links.

import type { Viewport as FlowViewport } from "@xyflow/react";
import { defaultValue, isSocketInput } from "./catalog";
import {
  ANY,
  declOf,
  edgeId,
  type EditorNode,
  frameNode,
  frameSize,
  type Graph,
  type GraphEdge,
  type GraphNode,
  type GraphNodeData,
  IO_IN,
  IO_OUT,
  ioNode,
  isFrame,
  isGraphNode,
  isIoNode,
  isLink,
  isReroute,
  isSubgraphInput,
  makeEdge,
  nextLocalId,
  nextNodeId,
  NODE_TYPE,
  nodeDecl,
  REROUTE_IN,
  REROUTE_OUT,
  type RerouteNode,
  SUBGRAPH_TYPE,
  subgraphDecl,
} from "./graphModel";
import type {
  Catalog,
  Constant,
  ControlAfterGenerate,
  GraphUi,
  InputDecl,
  InputValue,
  LinkRef,
  NodeDecl,
  SubgraphDef,
  SubgraphInputRef,
  SubgraphIo,
  Workflow,
  WorkflowNode,
} from "./types";

export interface LoadedGraph extends Graph {
  viewport?: FlowViewport;
  /** Top-level `ui` keys the editor does not use, kept as they were. */
  extraUi?: Record<string, unknown>;
  /** What did not fit the catalog (unknown types, inputs, outputs), for the user to see. */
  problems: string[];
}

/** What a level is read from: a workflow's nodes and ui, or a subgraph definition's (with its io). */
export interface LevelDoc {
  nodes: Record<string, WorkflowNode>;
  ui?: GraphUi & { io?: { in?: [number, number]; out?: [number, number] } };
  io?: { inputs: SubgraphIo[]; outputs: (SubgraphIo & { from?: LinkRef | SubgraphInputRef })[] };
}

/** Build React Flow nodes and edges from a workflow, checking it against the catalog. */
export function workflowToGraph(
  workflow: Workflow,
  catalog: Catalog,
  dynamicChoices: Record<string, string[]>,
): LoadedGraph {
  const loaded = docToGraph({ nodes: workflow.nodes ?? {}, ui: workflow.ui }, catalog, dynamicChoices, workflow.subgraphs ?? {});
  const vp = workflow.ui?.viewport;
  if (vp && [vp.x, vp.y, vp.zoom].every((v) => typeof v === "number" && Number.isFinite(v))) loaded.viewport = { ...vp };
  const extra = { ...(workflow.ui ?? {}) };
  for (const key of ["viewport", "groups", "reroutes"]) delete extra[key];
  if (Object.keys(extra).length) loaded.extraUi = extra;
  return loaded;
}

/** Build one level (a workflow's or a subgraph definition's) from its JSON. */
export function docToGraph(
  doc: LevelDoc,
  catalog: Catalog,
  dynamicChoices: Record<string, string[]>,
  defs: Record<string, SubgraphDef>,
): LoadedGraph {
  const problems: string[] = [];
  const entries = Object.entries(doc.nodes ?? {});
  const inferred = inferMissingDecls(doc.nodes ?? {}, catalog, defs);
  const nodes: EditorNode[] = [];
  const graphNodes = new Map<string, GraphNode>();

  for (const [id, wn] of entries) {
    const node = loadNode(id, wn, catalog, dynamicChoices, defs, inferred[id], problems);
    nodes.push(node);
    graphNodes.set(id, node);
  }

  // The subgraph's panels, when this level is a definition.
  const io = doc.io;
  if (io) {
    const at = doc.ui?.io;
    nodes.push(ioNode("in", io.inputs, at?.in));
    nodes.push(ioNode("out", io.outputs, at?.out));
  }

  // Reroutes, then every wire.
  const reroutes = doc.ui?.reroutes && typeof doc.ui.reroutes === "object" ? doc.ui.reroutes : {};
  const rerouteIds = new Set<string>();
  for (const [rid, r] of Object.entries(reroutes)) {
    if (graphNodes.has(rid) || rid === IO_IN || rid === IO_OUT || !Array.isArray(r?.position)) continue;
    rerouteIds.add(rid);
    nodes.push({ id: rid, type: "reroute", position: { x: r.position[0], y: r.position[1] }, data: { wireType: ANY } });
  }

  /** Output type of a source, or undefined if it does not exist. */
  const outputType = (node: string, output: string): string | undefined => {
    const source = graphNodes.get(node);
    return source ? declOf(catalog, source.data)?.outputs.find((o) => o.name === output)?.type : undefined;
  };
  const ioInputType = (name: string) => io?.inputs.find((i) => i.name === name)?.type;

  /** Where a reroute's wire starts (following reroutes), as the link it stands for. */
  const resolving = new Set<string>();
  const rerouteSource = (rid: string): { link: LinkRef | SubgraphInputRef; type: string } | null => {
    const from = reroutes[rid]?.from;
    if (!from || resolving.has(rid)) return null;
    resolving.add(rid);
    try {
      if ("reroute" in from) return rerouteIds.has(from.reroute) ? rerouteSource(from.reroute) : null;
      if (isSubgraphInput(from)) {
        const type = ioInputType(from.subgraph_input);
        return type ? { link: from, type } : null;
      }
      const type = isLink(from) ? outputType(from.node, from.output) : undefined;
      return type ? { link: from, type } : null;
    } finally {
      resolving.delete(rid);
    }
  };

  const edges: GraphEdge[] = [];
  for (const rid of rerouteIds) {
    const from = reroutes[rid].from;
    const resolved = rerouteSource(rid);
    const node = nodes.find((n) => n.id === rid) as RerouteNode;
    if (resolved) node.data = { wireType: resolved.type };
    if (!from || !resolved) continue;
    if ("reroute" in from) edges.push(makeEdge(from.reroute, REROUTE_OUT, rid, REROUTE_IN, resolved.type));
    else if (isSubgraphInput(from)) edges.push(makeEdge(IO_IN, from.subgraph_input, rid, REROUTE_IN, resolved.type));
    else edges.push(makeEdge(from.node, from.output, rid, REROUTE_IN, resolved.type));
  }
  // Reroutes fed by nothing take the type of what they feed (so they connect as that type).
  const sameLink = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

  for (const [id, wn] of entries) {
    const target = graphNodes.get(id)!;
    const targetDecl = declOf(catalog, target.data);
    const via = (wn.ui?.via ?? {}) as Record<string, string>;
    for (const input of targetDecl?.inputs ?? []) {
      const value = wn.inputs?.[input.name];
      const r = via[input.name];
      if (r && rerouteIds.has(r)) {
        const resolved = rerouteSource(r);
        const linked = isLink(value) || isSubgraphInput(value);
        if ((resolved && linked && sameLink(resolved.link, value)) || (!resolved && !linked)) {
          const type = resolved?.type ?? input.type;
          if (!resolved) (nodes.find((n) => n.id === r) as RerouteNode).data = { wireType: input.type };
          edges.push(makeEdge(r, REROUTE_OUT, id, input.name, type));
          continue;
        }
      }
      if (isSubgraphInput(value)) {
        const type = ioInputType(value.subgraph_input);
        if (!type) problems.push(`node ${id}: input '${input.name}' uses the missing subgraph input '${value.subgraph_input}'`);
        else edges.push(makeEdge(IO_IN, value.subgraph_input, id, input.name, type));
        continue;
      }
      if (!isLink(value)) continue;
      if (!graphNodes.has(value.node)) {
        problems.push(`node ${id}: input '${input.name}' links to missing node ${value.node}`);
        continue;
      }
      const type = outputType(value.node, value.output);
      if (!type) {
        problems.push(`node ${id}: input '${input.name}' links to missing output '${value.output}' of node ${value.node}`);
        continue;
      }
      if (input.type !== type && input.type !== ANY && type !== ANY) {
        problems.push(`node ${id}: input '${input.name}' (${input.type}) is linked to a ${type} output`);
      }
      edges.push(makeEdge(value.node, value.output, id, input.name, type));
    }
  }
  for (const output of io?.outputs ?? []) {
    if (!output.from) continue;
    if (isSubgraphInput(output.from)) {
      // An input passed straight through to an output.
      const type = ioInputType(output.from.subgraph_input);
      if (type) edges.push(makeEdge(IO_IN, output.from.subgraph_input, IO_OUT, output.name, type));
      continue;
    }
    const type = outputType(output.from.node, output.from.output);
    if (type) edges.push(makeEdge(output.from.node, output.from.output, IO_OUT, output.name, type));
    else problems.push(`subgraph output '${output.name}' comes from a missing node or output`);
  }

  // Groups.
  for (const group of Array.isArray(doc.ui?.groups) ? doc.ui.groups : []) {
    const b = group?.bounding;
    if (!Array.isArray(b) || b.length !== 4 || !b.every((v) => typeof v === "number" && Number.isFinite(v))) continue;
    nodes.unshift(frameNode(nextLocalId("g", nodes), { x: b[0], y: b[1] }, [b[2], b[3]], group.title ?? "Group", group.color));
  }

  layoutUnplaced(nodes, edges, catalog);
  return { nodes, edges, problems };
}

function loadNode(
  id: string,
  wn: WorkflowNode,
  catalog: Catalog,
  dynamicChoices: Record<string, string[]>,
  defs: Record<string, SubgraphDef>,
  inferred: NodeDecl | undefined,
  problems: string[],
): GraphNode {
  let decl: NodeDecl | undefined;
  let subgraphDeclared: NodeDecl | undefined;
  if (wn.type === SUBGRAPH_TYPE) {
    const def = wn.subgraph ? defs[wn.subgraph] : undefined;
    if (def) subgraphDeclared = subgraphDecl(wn.subgraph!, def, catalog, defs);
    else problems.push(`node ${id}: unknown subgraph '${wn.subgraph ?? ""}'`);
    decl = subgraphDeclared;
  } else {
    decl = catalog.nodes[wn.type];
    if (!decl) problems.push(`node ${id}: unknown node type '${wn.type}'`);
  }
  const known = !!decl;
  decl = decl ?? inferred!;
  const values: Record<string, Constant> = {};
  const extraInputs: Record<string, InputValue> = {};
  const given = wn.inputs ?? {};

  for (const input of decl.inputs) {
    const value = given[input.name];
    const linked = isLink(value) || isSubgraphInput(value);
    const socket = known ? isSocketInput(catalog, input) : linked;
    if (!socket) {
      values[input.name] = value === undefined || linked ? defaultValue(input, dynamicChoices) : (value as Constant);
    }
  }
  for (const [name, value] of Object.entries(given)) {
    if (!decl.inputs.some((i) => i.name === name)) {
      extraInputs[name] = value;
      problems.push(`node ${id} (${wn.type}): unknown input '${name}'`);
    }
  }

  const ui = { ...(wn.ui ?? {}) };
  const { position, size, color, collapsed, pinned } = ui;
  const control: Record<string, ControlAfterGenerate> = {};
  for (const input of decl.inputs) {
    if (!input.control_after_generate) continue;
    control[input.name] = ui.control_after_generate?.[input.name] ?? "fixed";
  }
  for (const key of ["position", "size", "control_after_generate", "color", "collapsed", "pinned", "via"]) delete ui[key];

  const data: GraphNodeData = { type: wn.type, mode: wn.mode ?? "active", values, control };
  if (wn.title) data.title = wn.title;
  if (Object.keys(extraInputs).length) data.extraInputs = extraInputs;
  if (Object.keys(ui).length) data.extraUi = ui;
  if (Array.isArray(size)) data.size = [size[0], size[1]];
  if (typeof color === "string") data.color = color;
  if (collapsed === true) data.collapsed = true;
  if (pinned === true) data.pinned = true;
  if (wn.type === SUBGRAPH_TYPE) data.subgraph = wn.subgraph;
  if (subgraphDeclared) data.subgraphDecl = subgraphDeclared;
  if (!known) data.missingDecl = decl;
  return {
    id,
    type: NODE_TYPE,
    position: Array.isArray(position) ? { x: position[0], y: position[1] } : { x: NaN, y: NaN },
    data,
    ...(pinned === true ? { draggable: false } : {}),
  };
}

function constantType(value: unknown): string {
  if (typeof value === "number") return Number.isInteger(value) ? "INT" : "FLOAT";
  return typeof value === "boolean" ? "BOOLEAN" : "STRING";
}

/** For node types missing from the catalog, infer sockets from the workflow so links survive. */
function inferMissingDecls(
  nodes: Record<string, WorkflowNode>,
  catalog: Catalog,
  defs: Record<string, SubgraphDef>,
): Record<string, NodeDecl> {
  const result: Record<string, NodeDecl> = {};
  const known = (wn: WorkflowNode) => (wn.type === SUBGRAPH_TYPE ? !!(wn.subgraph && defs[wn.subgraph]) : !!catalog.nodes[wn.type]);
  for (const [id, wn] of Object.entries(nodes)) {
    if (known(wn)) continue;
    const inputs: InputDecl[] = Object.entries(wn.inputs ?? {}).map(([name, value]) => {
      if (!isLink(value)) return { name, type: isSubgraphInput(value) ? ANY : constantType(value) };
      const source = nodes[value.node];
      const sourceOut = source && catalog.nodes[source.type]?.outputs.find((o) => o.name === value.output);
      return { name, type: sourceOut?.type ?? ANY };
    });
    const outputs = new Map<string, string>();
    for (const other of Object.values(nodes)) {
      for (const [name, value] of Object.entries(other.inputs ?? {})) {
        if (!isLink(value) || value.node !== id) continue;
        const target = catalog.nodes[other.type]?.inputs.find((i) => i.name === name);
        outputs.set(value.output, target?.type ?? ANY);
      }
    }
    result[id] = {
      name: wn.type,
      display_name: wn.type === SUBGRAPH_TYPE ? `Subgraph ${wn.subgraph ?? ""}` : wn.type,
      category: "missing",
      inputs,
      outputs: [...outputs].map(([name, type]) => ({ name, type })),
    };
  }
  return result;
}

/** Give nodes without a saved position a place: columns by depth in the graph. */
function layoutUnplaced(nodes: EditorNode[], edges: GraphEdge[], catalog: Catalog): void {
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
  const placed = nodes.filter((n) => !unplaced.includes(n) && !isFrame(n));
  const left = placed.length ? Math.max(...placed.map((n) => n.position.x)) + 380 : 40;
  const columnY = new Map<number, number>();
  const maxDepth = Math.max(0, ...unplaced.filter((n) => n.id !== IO_OUT).map((n) => depthOf(n.id)));
  for (const node of unplaced) {
    const d = node.id === IO_OUT ? maxDepth + 1 : depthOf(node.id);
    const y = columnY.get(d) ?? 40;
    node.position = { x: left + d * 400, y };
    columnY.set(d, y + estimateHeight(node, catalog) + 40);
  }
}

function estimateHeight(node: EditorNode, catalog: Catalog): number {
  const decl = nodeDecl(catalog, node);
  if (!decl) return 100;
  const multiline = decl.inputs.filter((i) => i.multiline).length;
  return 40 + 24 * (decl.inputs.length + decl.outputs.length) + 80 * multiline;
}

/** The wire into each input of a level, by edge id (`target:input`). */
export function incomingEdges(edges: GraphEdge[]): Map<string, GraphEdge> {
  const map = new Map<string, GraphEdge>();
  for (const e of edges) if (e.targetHandle) map.set(edgeId(e.target, e.targetHandle), e);
  return map;
}

/** What a wire stands for, following reroutes back to a node output or a subgraph input. */
export function resolveSource(
  edge: GraphEdge | undefined,
  byId: Map<string, EditorNode>,
  incoming: Map<string, GraphEdge>,
): LinkRef | SubgraphInputRef | null {
  const seen = new Set<string>();
  while (edge && edge.sourceHandle) {
    const source = byId.get(edge.source);
    if (!source) return null;
    if (isReroute(source)) {
      if (seen.has(source.id)) return null;
      seen.add(source.id);
      edge = incoming.get(edgeId(source.id, REROUTE_IN));
      continue;
    }
    if (isIoNode(source)) return { subgraph_input: edge.sourceHandle };
    return { node: edge.source, output: edge.sourceHandle };
  }
  return null;
}

const rounded = (p: { x: number; y: number }): [number, number] => [Math.round(p.x), Math.round(p.y)];

/** Serialise one level: its engine nodes (with links through reroutes resolved) and its ui. */
export function graphToDoc(
  nodes: EditorNode[],
  edges: GraphEdge[],
  catalog: Catalog | null,
): Required<Pick<LevelDoc, "nodes">> & { ui: GraphUi; outputs: Record<string, LinkRef | SubgraphInputRef> } {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const incoming = incomingEdges(edges);
  const out: Record<string, WorkflowNode> = {};
  const ui: GraphUi = {};
  for (const node of nodes) {
    if (!isGraphNode(node)) continue;
    const data = node.data;
    const decl = declOf(catalog, data);
    const inputs: Record<string, InputValue> = {};
    const via: Record<string, string> = {};
    const names = decl ? decl.inputs.map((i) => i.name) : Object.keys(data.values);
    for (const name of names) {
      const edge = incoming.get(edgeId(node.id, name));
      const link = resolveSource(edge, byId, incoming);
      if (edge && isReroute(byId.get(edge.source)!)) via[name] = edge.source;
      if (link) inputs[name] = link;
      else if (name in data.values) inputs[name] = data.values[name];
    }
    for (const [name, value] of Object.entries(data.extraInputs ?? {})) {
      if (!(name in inputs)) inputs[name] = value;
    }
    const wn: WorkflowNode = {
      type: data.type,
      ...(data.subgraph ? { subgraph: data.subgraph } : {}),
      ...(data.title ? { title: data.title } : {}),
      ...(data.mode && data.mode !== "active" ? { mode: data.mode } : {}),
      inputs,
    };
    const nodeUi: WorkflowNode["ui"] = { ...(data.extraUi ?? {}) };
    nodeUi.position = rounded(node.position);
    if (data.size) nodeUi.size = [Math.round(data.size[0]), Math.round(data.size[1])];
    if (Object.keys(data.control).length) nodeUi.control_after_generate = { ...data.control };
    if (data.color) nodeUi.color = data.color;
    if (data.collapsed) nodeUi.collapsed = true;
    if (data.pinned) nodeUi.pinned = true;
    if (Object.keys(via).length) nodeUi.via = via;
    wn.ui = nodeUi;
    out[node.id] = wn;
  }
  const reroutes: NonNullable<GraphUi["reroutes"]> = {};
  for (const node of nodes) {
    if (!isReroute(node)) continue;
    const edge = incoming.get(edgeId(node.id, REROUTE_IN));
    const source = edge && byId.get(edge.source);
    const entry: (typeof reroutes)[string] = { position: rounded(node.position) };
    if (edge && source && edge.sourceHandle) {
      if (isReroute(source)) entry.from = { reroute: source.id };
      else if (isIoNode(source)) entry.from = { subgraph_input: edge.sourceHandle };
      else entry.from = { node: source.id, output: edge.sourceHandle };
    }
    reroutes[node.id] = entry;
  }
  if (Object.keys(reroutes).length) ui.reroutes = reroutes;
  const groups = nodes.filter(isFrame).map((f) => ({
    title: f.data.title,
    color: f.data.color,
    bounding: [...rounded(f.position), Math.round(frameSize(f)[0]), Math.round(frameSize(f)[1])] as [number, number, number, number],
  }));
  if (groups.length) ui.groups = groups;
  const outputs: Record<string, LinkRef | SubgraphInputRef> = {};
  for (const e of edges) {
    if (e.target !== IO_OUT || !e.targetHandle) continue;
    const link = resolveSource(e, byId, incoming);
    if (link) outputs[e.targetHandle] = link;
  }
  return { nodes: out, ui, outputs };
}

/** Serialise the root level as a workflow in our format. */
export function graphToWorkflow(
  nodes: EditorNode[],
  edges: GraphEdge[],
  catalog: Catalog | null,
  viewport?: FlowViewport,
  subgraphs?: Record<string, SubgraphDef>,
  extraUi?: Record<string, unknown>,
): Workflow {
  const doc = graphToDoc(nodes, edges, catalog);
  const workflow: Workflow = { format: "latentgraph", version: 3, nodes: doc.nodes };
  if (subgraphs && Object.keys(subgraphs).length) workflow.subgraphs = subgraphs;
  const ui: GraphUi = { ...(extraUi ?? {}), ...doc.ui };
  if (viewport) ui.viewport = { x: round2(viewport.x), y: round2(viewport.y), zoom: round4(viewport.zoom) };
  if (Object.keys(ui).length) workflow.ui = ui;
  return workflow;
}

const round2 = (v: number) => Math.round(v * 100) / 100;
const round4 = (v: number) => Math.round(v * 10000) / 10000;

/** Accept a parsed JSON document as a workflow in our format (version 2 or 3), or return null. */
export function asOurWorkflow(doc: unknown): Workflow | null {
  if (!doc || typeof doc !== "object") return null;
  const wf = doc as Workflow;
  if (wf.format !== "latentgraph" || (wf.version !== 2 && wf.version !== 3) || !wf.nodes || typeof wf.nodes !== "object") {
    return null;
  }
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
    const ui = wn.ui ? structuredClone(wn.ui) : undefined;
    if (ui) delete ui.via; // reroutes are not copied
    nodes[idMap.get(id)!] = { ...wn, inputs, ui };
  }
  return { workflow: { ...fragment, nodes, ui: undefined }, idMap };
}
