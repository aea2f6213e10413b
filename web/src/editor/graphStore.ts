// The edited graph (React Flow nodes and edges), its undo/redo history and the editing actions.
import {
  applyEdgeChanges,
  applyNodeChanges,
  type Connection,
  type EdgeChange,
  type NodeChange,
  type Viewport,
} from "@xyflow/react";
import { catalogStore, isValueType } from "../catalog";
import {
  ADD_SOCKET,
  declOf,
  edgeId,
  type EditorNode,
  type FrameNode,
  frameSize,
  type Graph,
  type GraphEdge,
  type GraphNode,
  type GraphNodeData,
  IO_IN,
  IO_OUT,
  isFrame,
  isGraphNode,
  isIoNode,
  isReroute,
  makeEdge,
  newNodeData,
  nextNodeId,
  NODE_TYPE,
  nodeDecl,
  REROUTE_IN,
} from "../graphModel";
import { createStore } from "../store";
import type { Constant, ControlAfterGenerate, NodeMode, SubgraphDef, SubgraphIo } from "../types";
import { checkpointDefaults } from "./checkpointDefaults";
import { clearInputError } from "./runState";

/** What one undo step restores. */
export interface Snapshot extends Graph {
  subgraphs: Record<string, SubgraphDef>;
}

/** A level we left to edit a subgraph inside it (the breadcrumb goes back to it). */
export interface OpenLevel {
  nodes: EditorNode[];
  edges: GraphEdge[];
  past: Snapshot[];
  future: Snapshot[];
  viewport: Viewport;
  /** The Subgraph node opened from that level, its definition and its title. */
  nodeId: string;
  defId: string;
  title: string;
  /** The definitions when it was opened (what undo out there goes back to). */
  subgraphs: Record<string, SubgraphDef>;
}

export interface GraphState extends Graph {
  /** The workflow's subgraph definitions (shared by every level). */
  subgraphs: Record<string, SubgraphDef>;
  past: Snapshot[];
  future: Snapshot[];
  viewport: Viewport;
  /** Name of the open workflow (for the library and downloads). */
  name: string;
  /** Outer levels, outermost first; empty at the workflow's own level. */
  stack: OpenLevel[];
  /** Edited since it was opened or saved. */
  dirty: boolean;
  /** Top-level `ui` keys the editor does not use, kept as they were. */
  extraUi?: Record<string, unknown>;
}

const HISTORY_LIMIT = 100;
/** Edits with the same key within this time (typing in one widget) make one undo step. */
const COALESCE_MS = 1200;

export function emptyGraphState(): GraphState {
  return {
    nodes: [],
    edges: [],
    subgraphs: {},
    past: [],
    future: [],
    viewport: { x: 0, y: 0, zoom: 1 },
    name: "untitled",
    stack: [],
    dirty: false,
  };
}

export const graphStore = createStore<GraphState>(emptyGraphState());

let lastCommit: { key: string; time: number } | null = null;

function snapshot(s: GraphState): Snapshot {
  return { nodes: s.nodes, edges: s.edges, subgraphs: s.subgraphs };
}

/** Record the current graph as an undo step, before changing it. */
export function commit(coalesceKey?: string): void {
  const now = Date.now();
  if (coalesceKey && lastCommit?.key === coalesceKey && now - lastCommit.time < COALESCE_MS) {
    lastCommit.time = now;
    return;
  }
  lastCommit = coalesceKey ? { key: coalesceKey, time: now } : null;
  const s = graphStore.get();
  graphStore.set({ past: [...s.past, snapshot(s)].slice(-HISTORY_LIMIT), future: [], dirty: true });
}

export function undo(): void {
  const s = graphStore.get();
  const previous = s.past[s.past.length - 1];
  if (!previous) return;
  lastCommit = null;
  graphStore.set({ ...previous, past: s.past.slice(0, -1), future: [...s.future, snapshot(s)], dirty: true });
}

export function redo(): void {
  const s = graphStore.get();
  const next = s.future[s.future.length - 1];
  if (!next) return;
  lastCommit = null;
  graphStore.set({ ...next, past: [...s.past, snapshot(s)], future: s.future.slice(0, -1), dirty: true });
}

/** Replace the whole graph (open a workflow). With `undoable`, the old graph can be restored. */
export function replaceGraph(
  graph: Graph & { subgraphs?: Record<string, SubgraphDef>; extraUi?: Record<string, unknown> },
  options: { undoable: boolean; name?: string; viewport?: Viewport; dirty?: boolean },
): void {
  if (options.undoable && !graphStore.get().stack.length) commit();
  else graphStore.set({ past: [], future: [] });
  const patch: Partial<GraphState> = {
    nodes: graph.nodes,
    edges: graph.edges,
    subgraphs: graph.subgraphs ?? {},
    extraUi: graph.extraUi,
    stack: [],
    dirty: options.dirty ?? false,
  };
  if (options.name !== undefined) patch.name = options.name;
  if (options.viewport) patch.viewport = options.viewport;
  graphStore.set(patch);
}

export function findNode(id: string): EditorNode | undefined {
  return graphStore.get().nodes.find((n) => n.id === id);
}

// ---- linked inputs, computed once per edge list (each node reads its own entry) ----

let linkedCache: { edges: GraphEdge[]; map: Map<string, string> } | null = null;

/** The linked inputs of a node, as one string (stable between renders for React). */
export function linkedInputsKey(edges: GraphEdge[], nodeId: string): string {
  if (linkedCache?.edges !== edges) {
    const lists = new Map<string, string[]>();
    for (const e of edges) if (e.targetHandle) lists.set(e.target, [...(lists.get(e.target) ?? []), e.targetHandle]);
    linkedCache = { edges, map: new Map([...lists].map(([id, handles]) => [id, handles.sort().join("\u0000")])) };
  }
  return linkedCache.map.get(nodeId) ?? "";
}

// ---- moving, resizing: group frames carry the nodes inside them ----

/** Nodes inside each frame being dragged, captured when the drag starts. */
let frameMembers = new Map<string, string[]>();

function nodeBox(n: EditorNode): { x: number; y: number; w: number; h: number } {
  const size = isFrame(n) ? frameSize(n) : [n.measured?.width ?? n.width ?? 0, n.measured?.height ?? n.height ?? 0];
  return { x: n.position.x, y: n.position.y, w: size[0], h: size[1] };
}

/** The nodes (and reroutes, and smaller frames) lying inside a frame. */
export function nodesInFrame(frame: FrameNode, nodes: EditorNode[]): EditorNode[] {
  const f = nodeBox(frame);
  return nodes.filter((n) => {
    if (n.id === frame.id) return false;
    const b = nodeBox(n);
    return b.x >= f.x && b.y >= f.y && b.x + b.w <= f.x + f.w && b.y + b.h <= f.y + f.h;
  });
}

export function startDrag(dragged: EditorNode[]): void {
  commit();
  const { nodes } = graphStore.get();
  const moving = new Set(dragged.map((n) => n.id));
  frameMembers = new Map();
  for (const node of dragged) {
    if (!isFrame(node)) continue;
    const members = nodesInFrame(node, nodes).filter((n) => !moving.has(n.id) && n.draggable !== false);
    frameMembers.set(node.id, members.map((n) => n.id));
  }
}

export function onNodesChange(changes: NodeChange<EditorNode>[]): void {
  // Resizing a graph node sets `data.size` (see GraphNode); React Flow must not also fix its box.
  const byId = new Map(graphStore.get().nodes.map((n) => [n.id, n]));
  const kept = changes.filter((c) => {
    if (c.type !== "dimensions" || !c.setAttributes) return true;
    const node = byId.get(c.id);
    return !!node && isFrame(node);
  });
  if (!kept.length) return;
  const shifts: NodeChange<EditorNode>[] = [];
  for (const c of kept) {
    if (c.type !== "position" || !c.position || !frameMembers.has(c.id)) continue;
    const before = byId.get(c.id)!.position;
    const dx = c.position.x - before.x;
    const dy = c.position.y - before.y;
    if (!dx && !dy) continue;
    for (const id of frameMembers.get(c.id)!) {
      const member = byId.get(id);
      if (member) shifts.push({ type: "position", id, position: { x: member.position.x + dx, y: member.position.y + dy } });
    }
  }
  graphStore.set((s) => ({ nodes: applyNodeChanges([...kept, ...shifts], s.nodes) }));
}

export function onEdgesChange(changes: EdgeChange<GraphEdge>[]): void {
  graphStore.set((s) => ({ edges: applyEdgeChanges(changes, s.edges) }));
}

// ---- node data ----

function updateNode(id: string, update: (data: GraphNodeData) => GraphNodeData): void {
  graphStore.set((s) => ({
    nodes: s.nodes.map((n) => (n.id === id && isGraphNode(n) ? { ...n, data: update(n.data) } : n)),
  }));
}

function updateGraphNodes(ids: string[], update: (node: GraphNode) => GraphNode): void {
  const set = new Set(ids);
  graphStore.set((s) => ({ nodes: s.nodes.map((n) => (set.has(n.id) && isGraphNode(n) ? update(n) : n)) }));
}

export function setValue(nodeId: string, input: string, value: Constant): void {
  const node = findNode(nodeId);
  if (!node || !isGraphNode(node) || node.data.values[input] === value) return;
  commit(`value:${nodeId}:${input}`);
  updateNode(nodeId, (d) => ({ ...d, values: { ...d.values, [input]: value } }));
  clearInputError(nodeId, input);
}

export function setControl(nodeId: string, input: string, mode: ControlAfterGenerate): void {
  commit();
  updateNode(nodeId, (d) => ({ ...d, control: { ...d.control, [input]: mode } }));
}

export function setTitle(nodeId: string, title: string): void {
  const node = findNode(nodeId);
  if (!node) return;
  if (isFrame(node)) {
    if (node.data.title === title.trim() || !title.trim()) return;
    commit();
    graphStore.set((s) => ({ nodes: s.nodes.map((n) => (n.id === nodeId && isFrame(n) ? { ...n, data: { ...n.data, title: title.trim() } } : n)) }));
    return;
  }
  if (!isGraphNode(node) || (node.data.title ?? "") === title.trim()) return;
  commit();
  updateNode(nodeId, (d) => {
    const next = { ...d, title: title.trim() || undefined };
    if (!next.title) delete next.title;
    return next;
  });
}

export function setSize(nodeId: string, size: [number, number] | undefined): void {
  updateNode(nodeId, (d) => {
    const next = { ...d, size };
    if (!size) delete next.size;
    return next;
  });
}

/** Mute or bypass the selected nodes; applying the same mode again makes them active. */
export function toggleModeOfSelected(mode: NodeMode): void {
  const selected = graphStore.get().nodes.filter((n): n is GraphNode => isGraphNode(n) && !!n.selected);
  if (!selected.length) return;
  const target: NodeMode = selected.every((n) => n.data.mode === mode) ? "active" : mode;
  setModes(selected.map((n) => n.id), target);
}

export function setModes(ids: string[], mode: NodeMode): void {
  commit();
  updateGraphNodes(ids, (n) => ({ ...n, data: { ...n.data, mode } }));
}

/** Colour nodes or frames; `undefined` restores the default colour of nodes. */
export function setColor(ids: string[], color: string | undefined): void {
  commit();
  const set = new Set(ids);
  graphStore.set((s) => ({
    nodes: s.nodes.map((n) => {
      if (!set.has(n.id)) return n;
      if (isFrame(n)) return color ? { ...n, data: { ...n.data, color } } : n;
      if (!isGraphNode(n)) return n;
      const data = { ...n.data, color };
      if (!color) delete data.color;
      return { ...n, data };
    }),
  }));
}

export function setCollapsed(ids: string[], collapsed: boolean): void {
  commit();
  updateGraphNodes(ids, (n) => {
    const data: GraphNodeData = { ...n.data, collapsed };
    if (!collapsed) delete data.collapsed;
    return { ...n, data };
  });
}

export function setPinned(ids: string[], pinned: boolean): void {
  commit();
  updateGraphNodes(ids, (n) => {
    const data: GraphNodeData = { ...n.data, pinned };
    if (!pinned) delete data.pinned;
    const next: GraphNode = { ...n, data, draggable: pinned ? false : undefined };
    if (!pinned) delete next.draggable;
    return next;
  });
}

/** Add a node of a catalog type at a flow position; returns its id. */
export function addNode(type: string, position: { x: number; y: number }): string | null {
  const { catalog, dynamicChoices } = catalogStore.get();
  const decl = catalog?.nodes[type];
  if (!catalog || !decl) return null;
  const data = newNodeData(decl, catalog, dynamicChoices);
  Object.assign(data.values, checkpointDefaults(decl, data.values, graphStore.get().nodes));
  return addGraphNode(data, position);
}

export function addGraphNode(data: GraphNodeData, position: { x: number; y: number }): string {
  commit();
  const id = nextNodeId(graphStore.get().nodes);
  const node: GraphNode = { id, type: NODE_TYPE, position, data, selected: true };
  graphStore.set((s) => ({ nodes: [...s.nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), node] }));
  return id;
}

// ---- wires ----

/** Output and input types of a connection, or null if an end is unknown. */
export function connectionTypes(c: Connection | GraphEdge): { from: string; to: string } | null {
  const { catalog } = catalogStore.get();
  const { nodes } = graphStore.get();
  const source = nodes.find((n) => n.id === c.source);
  const target = nodes.find((n) => n.id === c.target);
  const output = nodeDecl(catalog, source)?.outputs.find((o) => o.name === c.sourceHandle);
  const input = nodeDecl(catalog, target)?.inputs.find((i) => i.name === c.targetHandle);
  if (!output || !input) return null;
  return { from: output.type, to: input.type };
}

/** Whether `upstream` feeds `id` through a chain of reroutes. */
function feedsThroughReroutes(upstream: string, id: string, edges: GraphEdge[]): boolean {
  let current: string | undefined = upstream;
  const seen = new Set<string>();
  while (current && !seen.has(current)) {
    if (current === id) return true;
    seen.add(current);
    current = edges.find((e) => e.target === current && e.targetHandle === REROUTE_IN)?.source;
  }
  return false;
}

/** Types a reroute's wire goes on to (what it feeds, through further reroutes). */
function downstreamTypes(rerouteId: string, nodes: EditorNode[], edges: GraphEdge[]): string[] {
  const { catalog } = catalogStore.get();
  const types: string[] = [];
  const seen = new Set<string>();
  const walk = (id: string) => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const e of edges) {
      if (e.source !== id) continue;
      const target = nodes.find((n) => n.id === e.target);
      if (target && isReroute(target)) walk(target.id);
      else {
        const type = nodeDecl(catalog, target)?.inputs.find((i) => i.name === e.targetHandle)?.type;
        if (type && type !== "*") types.push(type);
      }
    }
  };
  walk(rerouteId);
  return types;
}

/** Equal types connect; "*" (a reroute fed by nothing, a subgraph's add socket) takes any type. */
export function isValidConnection(c: Connection | GraphEdge): boolean {
  if (c.source === c.target) return false;
  const types = connectionTypes(c);
  if (!types) return false;
  const { nodes, edges } = graphStore.get();
  // A subgraph input may go straight to an output, but not by way of the "+" sockets.
  if (c.source === IO_IN && c.target === IO_OUT && (c.sourceHandle === ADD_SOCKET || c.targetHandle === ADD_SOCKET)) return false;
  const target = nodes.find((n) => n.id === c.target);
  if (target && isReroute(target)) {
    if (feedsThroughReroutes(c.source, target.id, edges)) return false;
    const fromType = types.from;
    return fromType === "*" || downstreamTypes(target.id, nodes, edges).every((t) => t === fromType);
  }
  return types.from === types.to || types.from === "*" || types.to === "*";
}

/** Set the wire type of reroutes fed from `rerouteId` (it changed), and recolour their wires. */
function retypeReroutes(nodes: EditorNode[], edges: GraphEdge[], rerouteId: string, type: string): { nodes: EditorNode[]; edges: GraphEdge[] } {
  const chain = new Set<string>();
  const walk = (id: string) => {
    if (chain.has(id)) return;
    chain.add(id);
    for (const e of edges) if (e.source === id && isReroute(nodes.find((n) => n.id === e.target)!)) walk(e.target);
  };
  walk(rerouteId);
  return {
    nodes: nodes.map((n) => (chain.has(n.id) && isReroute(n) ? { ...n, data: { wireType: type } } : n)),
    edges: edges.map((e) => (chain.has(e.source) && type !== "*" ? makeEdge(e.source, e.sourceHandle!, e.target, e.targetHandle!, type) : e)),
  };
}

function uniqueName(base: string, taken: string[]): string {
  let name = base;
  for (let i = 2; taken.includes(name); i++) name = `${base}_${i}`;
  return name;
}

/** Inside a subgraph, a wire from its "+" input socket or to its "+" output socket adds one. */
function addIoItem(c: Connection, types: { from: string; to: string }): Connection {
  const { nodes } = graphStore.get();
  const side = c.source === IO_IN ? "in" : "out";
  const panel = nodes.find((n) => n.id === (side === "in" ? IO_IN : IO_OUT));
  if (!panel || !isIoNode(panel)) return c;
  const items = panel.data.items;
  const base = side === "in" ? c.targetHandle! : c.sourceHandle!;
  const name = uniqueName(base, items.map((i) => i.name));
  const item: SubgraphIo = { name, type: side === "in" ? types.to : types.from };
  if (side === "in") {
    const target = nodes.find((n) => n.id === c.target);
    const { catalog } = catalogStore.get();
    if (target && isGraphNode(target) && catalog && isValueType(catalog, item.type) && c.targetHandle! in target.data.values) {
      item.default = target.data.values[c.targetHandle!];
    }
  }
  graphStore.set((s) => ({
    nodes: s.nodes.map((n) => (n.id === panel.id && isIoNode(n) ? { ...n, data: { ...n.data, items: [...items, item] } } : n)),
  }));
  return side === "in" ? { ...c, sourceHandle: name } : { ...c, targetHandle: name };
}

/** Link an output to an input, replacing the input's previous link. */
export function connect(c: Connection, options: { undoable?: boolean } = {}): void {
  if (!isValidConnection(c) || !c.sourceHandle || !c.targetHandle) return;
  const types = connectionTypes(c)!;
  if (options.undoable !== false) commit();
  if ((c.source === IO_IN && c.sourceHandle === ADD_SOCKET) || (c.target === IO_OUT && c.targetHandle === ADD_SOCKET)) {
    c = addIoItem(c, types);
  }
  const type = types.from !== "*" ? types.from : types.to;
  const id = edgeId(c.target, c.targetHandle!);
  const edge = makeEdge(c.source, c.sourceHandle!, c.target, c.targetHandle!, type);
  graphStore.set((s) => {
    let nodes = s.nodes;
    let edges = [...s.edges.filter((e) => e.id !== id), edge];
    const target = nodes.find((n) => n.id === c.target);
    const source = nodes.find((n) => n.id === c.source);
    if (target && isReroute(target) && types.from !== "*") ({ nodes, edges } = retypeReroutes(nodes, edges, target.id, types.from));
    if (source && isReroute(source) && source.data.wireType === "*" && types.to !== "*") {
      nodes = nodes.map((n) => (n.id === source.id && isReroute(n) ? { ...n, data: { wireType: types.to } } : n));
    }
    return { nodes, edges };
  });
  clearInputError(c.target, c.targetHandle!);
}

export function removeEdge(id: string): void {
  commit();
  graphStore.set((s) => ({ edges: s.edges.filter((e) => e.id !== id) }));
}

/** Connect a new node to a dangling connection: the first input or output of the right type. */
export function connectToNew(
  newId: string,
  from: { nodeId: string; handleId: string; handleType: "source" | "target"; type: string },
): void {
  const handle = firstCompatibleHandle(newId, from.handleType === "source" ? "target" : "source", from.type);
  if (!handle) return;
  if (from.handleType === "source") connect({ source: from.nodeId, sourceHandle: from.handleId, target: newId, targetHandle: handle });
  else connect({ source: newId, sourceHandle: handle, target: from.nodeId, targetHandle: from.handleId });
}

/** The first socket of a node a wire of `type` can plug into: a free input first, else any. */
export function firstCompatibleHandle(nodeId: string, kind: "source" | "target", type: string): string | null {
  const { catalog } = catalogStore.get();
  const { nodes, edges } = graphStore.get();
  const node = nodes.find((n) => n.id === nodeId);
  const decl = nodeDecl(catalog, node);
  if (!decl || !node) return null;
  const fits = (t: string) => t === type || type === "*" || (t === "*" && !isGraphNode(node));
  if (kind === "source") {
    return decl.outputs.find((o) => fits(o.type) && o.name !== ADD_SOCKET)?.name ?? decl.outputs.find((o) => fits(o.type))?.name ?? null;
  }
  const candidates = decl.inputs.filter((i) => fits(i.type));
  const linked = new Set(edges.filter((e) => e.target === nodeId).map((e) => e.targetHandle));
  const sockets = isGraphNode(node) && catalog ? candidates.filter((i) => !isValueType(catalog, i.type) || linked.has(i.name)) : candidates;
  const pool = sockets.length ? sockets : candidates;
  return (pool.find((i) => !linked.has(i.name) && i.name !== ADD_SOCKET) ?? pool.find((i) => i.name !== ADD_SOCKET) ?? pool[0])?.name ?? null;
}

// ---- selection, deletion, clones ----

export function selectAll(): void {
  graphStore.set((s) => ({
    nodes: s.nodes.map((n) => ({ ...n, selected: !isFrame(n) })),
    edges: s.edges.map((e) => ({ ...e, selected: true })),
  }));
}

export function selectedIds(kind: "graph" | "any" = "any"): string[] {
  return graphStore
    .get()
    .nodes.filter((n) => n.selected && (kind === "any" || isGraphNode(n)))
    .map((n) => n.id);
}

export function deleteSelected(): void {
  const { nodes, edges } = graphStore.get();
  const gone = new Set(nodes.filter((n) => n.selected && n.deletable !== false).map((n) => n.id));
  const keptEdges = edges.filter((e) => !e.selected && !gone.has(e.source) && !gone.has(e.target));
  if (!gone.size && keptEdges.length === edges.length) return;
  commit();
  graphStore.set({ nodes: nodes.filter((n) => !gone.has(n.id)), edges: keptEdges });
}

export function setViewport(viewport: Viewport): void {
  graphStore.set({ viewport });
}

export function setName(name: string): void {
  graphStore.set({ name });
}

/** Copies of nodes (values, not links) next to the originals; the copies become the selection. */
export function cloneNodes(ids: string[]): void {
  const { nodes } = graphStore.get();
  const originals = nodes.filter((n): n is GraphNode => ids.includes(n.id) && isGraphNode(n));
  if (!originals.length) return;
  commit();
  const copies: GraphNode[] = [];
  for (const node of originals) {
    const id = nextNodeId([...nodes, ...copies]);
    const data = structuredClone(node.data);
    delete data.pinned;
    copies.push({ id, type: NODE_TYPE, position: { x: node.position.x + 30, y: node.position.y + 30 }, data, selected: true });
  }
  graphStore.set({ nodes: [...nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), ...copies] });
}

export function deleteNodes(ids: string[]): void {
  const gone = new Set(ids.filter((id) => findNode(id)?.deletable !== false));
  commit();
  graphStore.set((s) => ({
    nodes: s.nodes.filter((n) => !gone.has(n.id)),
    edges: s.edges.filter((e) => !gone.has(e.source) && !gone.has(e.target)),
  }));
}

/** The engine nodes whose declarations say an input must be linked and it is not. */
export function missingLinks(node: GraphNode, linked: Set<string>): string[] {
  const { catalog } = catalogStore.get();
  const decl = declOf(catalog, node.data);
  if (!decl || !catalog || node.data.mode === "muted") return [];
  return decl.inputs
    .filter((i) => i.required !== false && !isValueType(catalog, i.type) && !linked.has(i.name))
    .map((i) => i.name);
}

