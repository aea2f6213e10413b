// The edited graph (React Flow nodes and edges), its undo/redo history and the editing actions.
import {
  applyEdgeChanges,
  applyNodeChanges,
  type Connection,
  type EdgeChange,
  type NodeChange,
  type Viewport,
} from "@xyflow/react";
import { catalogStore, isSocketInput } from "../catalog";
import {
  declOf,
  edgeId,
  makeEdge,
  newNodeData,
  nextNodeId,
  type Graph,
  type GraphEdge,
  type GraphNode,
  type GraphNodeData,
  NODE_TYPE,
} from "../graphModel";
import { createStore } from "../store";
import type { Constant, ControlAfterGenerate, NodeMode } from "../types";
import { clearInputError } from "./runState";

interface GraphState extends Graph {
  past: Graph[];
  future: Graph[];
  viewport: Viewport;
  /** Name of the open workflow (for the library and downloads). */
  name: string;
}

const HISTORY_LIMIT = 100;
/** Edits with the same key within this time (typing in one widget) make one undo step. */
const COALESCE_MS = 1200;

export const graphStore = createStore<GraphState>({
  nodes: [],
  edges: [],
  past: [],
  future: [],
  viewport: { x: 0, y: 0, zoom: 1 },
  name: "untitled",
});

let lastCommit: { key: string; time: number } | null = null;

/** Record the current graph as an undo step, before changing it. */
export function commit(coalesceKey?: string): void {
  const now = Date.now();
  if (coalesceKey && lastCommit?.key === coalesceKey && now - lastCommit.time < COALESCE_MS) {
    lastCommit.time = now;
    return;
  }
  lastCommit = coalesceKey ? { key: coalesceKey, time: now } : null;
  const { nodes, edges, past } = graphStore.get();
  graphStore.set({ past: [...past, { nodes, edges }].slice(-HISTORY_LIMIT), future: [] });
}

export function undo(): void {
  const { nodes, edges, past, future } = graphStore.get();
  const previous = past[past.length - 1];
  if (!previous) return;
  lastCommit = null;
  graphStore.set({ ...previous, past: past.slice(0, -1), future: [...future, { nodes, edges }] });
}

export function redo(): void {
  const { nodes, edges, past, future } = graphStore.get();
  const next = future[future.length - 1];
  if (!next) return;
  lastCommit = null;
  graphStore.set({ ...next, past: [...past, { nodes, edges }], future: future.slice(0, -1) });
}

/** Replace the whole graph (open a workflow). With `undoable`, the old graph can be restored. */
export function replaceGraph(graph: Graph, options: { undoable: boolean; name?: string; viewport?: Viewport }): void {
  if (options.undoable) commit();
  else graphStore.set({ past: [], future: [] });
  const patch: Partial<GraphState> = { nodes: graph.nodes, edges: graph.edges };
  if (options.name !== undefined) patch.name = options.name;
  if (options.viewport) patch.viewport = options.viewport;
  graphStore.set(patch);
}

export function onNodesChange(changes: NodeChange<GraphNode>[]): void {
  // Resizing sets `data.size` (see GraphNode); React Flow must not also fix the node's box.
  const kept = changes.filter((c) => c.type !== "dimensions" || !c.setAttributes);
  if (kept.length) graphStore.set((s) => ({ nodes: applyNodeChanges(kept, s.nodes) }));
}

export function onEdgesChange(changes: EdgeChange<GraphEdge>[]): void {
  graphStore.set((s) => ({ edges: applyEdgeChanges(changes, s.edges) }));
}

function updateNode(id: string, update: (data: GraphNodeData) => GraphNodeData): void {
  graphStore.set((s) => ({ nodes: s.nodes.map((n) => (n.id === id ? { ...n, data: update(n.data) } : n)) }));
}

export function setValue(nodeId: string, input: string, value: Constant): void {
  const node = graphStore.get().nodes.find((n) => n.id === nodeId);
  if (!node || node.data.values[input] === value) return;
  commit(`value:${nodeId}:${input}`);
  updateNode(nodeId, (d) => ({ ...d, values: { ...d.values, [input]: value } }));
  clearInputError(nodeId, input);
}

export function setControl(nodeId: string, input: string, mode: ControlAfterGenerate): void {
  commit();
  updateNode(nodeId, (d) => ({ ...d, control: { ...d.control, [input]: mode } }));
}

export function setTitle(nodeId: string, title: string): void {
  const node = graphStore.get().nodes.find((n) => n.id === nodeId);
  if (!node || (node.data.title ?? "") === title.trim()) return;
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
  const selected = graphStore.get().nodes.filter((n) => n.selected);
  if (!selected.length) return;
  const target: NodeMode = selected.every((n) => n.data.mode === mode) ? "active" : mode;
  setModes(selected.map((n) => n.id), target);
}

export function setModes(ids: string[], mode: NodeMode): void {
  commit();
  const set = new Set(ids);
  graphStore.set((s) => ({
    nodes: s.nodes.map((n) => (set.has(n.id) ? { ...n, data: { ...n.data, mode } } : n)),
  }));
}

/** Add a node of a catalog type at a flow position; returns its id. */
export function addNode(type: string, position: { x: number; y: number }): string | null {
  const { catalog, dynamicChoices } = catalogStore.get();
  const decl = catalog?.nodes[type];
  if (!catalog || !decl) return null;
  commit();
  const id = nextNodeId(graphStore.get().nodes);
  const node: GraphNode = {
    id,
    type: NODE_TYPE,
    position,
    data: newNodeData(decl, catalog, dynamicChoices),
    selected: true,
  };
  graphStore.set((s) => ({ nodes: [...s.nodes.map((n) => ({ ...n, selected: false })), node] }));
  return id;
}

/** Output and input types of a connection, or null if an end is unknown. */
export function connectionTypes(c: Connection | GraphEdge): { from: string; to: string } | null {
  const { catalog } = catalogStore.get();
  const { nodes } = graphStore.get();
  const source = nodes.find((n) => n.id === c.source);
  const target = nodes.find((n) => n.id === c.target);
  if (!source || !target) return null;
  const output = declOf(catalog, source.data)?.outputs.find((o) => o.name === c.sourceHandle);
  const input = declOf(catalog, target.data)?.inputs.find((i) => i.name === c.targetHandle);
  if (!output || !input) return null;
  return { from: output.type, to: input.type };
}

/** An output can feed an input only when their types are equal (and not on the same node). */
export function isValidConnection(c: Connection | GraphEdge): boolean {
  if (c.source === c.target) return false;
  const types = connectionTypes(c);
  return !!types && (types.from === types.to || types.from === "*" || types.to === "*");
}

/** Link an output to an input, replacing the input's previous link. */
export function connect(c: Connection): void {
  if (!isValidConnection(c) || !c.sourceHandle || !c.targetHandle) return;
  const types = connectionTypes(c)!;
  commit();
  const id = edgeId(c.target, c.targetHandle);
  const edge = makeEdge(c.source, c.sourceHandle, c.target, c.targetHandle, types.from);
  graphStore.set((s) => ({ edges: [...s.edges.filter((e) => e.id !== id), edge] }));
  clearInputError(c.target, c.targetHandle);
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
  const { catalog } = catalogStore.get();
  const node = graphStore.get().nodes.find((n) => n.id === newId);
  const decl = node && declOf(catalog, node.data);
  if (!decl || !catalog) return;
  if (from.handleType === "source") {
    const input = decl.inputs.find((i) => i.type === from.type && isSocketInput(catalog, i));
    if (input) connect({ source: from.nodeId, sourceHandle: from.handleId, target: newId, targetHandle: input.name });
  } else {
    const output = decl.outputs.find((o) => o.type === from.type);
    if (output) connect({ source: newId, sourceHandle: output.name, target: from.nodeId, targetHandle: from.handleId });
  }
}

export function selectAll(): void {
  graphStore.set((s) => ({
    nodes: s.nodes.map((n) => ({ ...n, selected: true })),
    edges: s.edges.map((e) => ({ ...e, selected: true })),
  }));
}

export function deleteSelected(): void {
  const { nodes, edges } = graphStore.get();
  const gone = new Set(nodes.filter((n) => n.selected).map((n) => n.id));
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
  const originals = nodes.filter((n) => ids.includes(n.id));
  if (!originals.length) return;
  commit();
  const copies: GraphNode[] = [];
  for (const node of originals) {
    const id = nextNodeId([...nodes, ...copies]);
    copies.push({
      id,
      type: NODE_TYPE,
      position: { x: node.position.x + 30, y: node.position.y + 30 },
      data: structuredClone(node.data),
      selected: true,
    });
  }
  graphStore.set({ nodes: [...nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), ...copies] });
}

export function deleteNodes(ids: string[]): void {
  const gone = new Set(ids);
  commit();
  graphStore.set((s) => ({
    nodes: s.nodes.filter((n) => !gone.has(n.id)),
    edges: s.edges.filter((e) => !gone.has(e.source) && !gone.has(e.target)),
  }));
}
