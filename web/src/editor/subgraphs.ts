// Subgraphs in the editor: make one from a selection, open it to edit inside (the breadcrumb goes
// back out), save it to the components library and insert saved components into any workflow.
//
// Definitions live in the workflow's `subgraphs` (docs/protocol.md); a node of type "Subgraph"
// names one. Editing inside a subgraph edits its definition, so every node using it changes.
import { api } from "../api";
import { catalogStore, defaultValue, isValueType } from "../catalog";
import {
  declOf,
  type EditorNode,
  type GraphEdge,
  type GraphNode,
  type GraphNodeData,
  IO_IN,
  IO_OUT,
  isGraphNode,
  isIoNode,
  isLink,
  isSubgraphInput,
  nextNodeId,
  SUBGRAPH_TYPE,
  subgraphDecl,
} from "../graphModel";
import { docToGraph, graphToDoc, graphToWorkflow } from "../workflowJson";
import type { InputValue, LinkRef, SubgraphDef, SubgraphIo, Workflow, WorkflowNode } from "../types";
import { getFlowInstance } from "./flow";
import { commit, graphStore, type GraphState, type OpenLevel } from "./graphStore";
import { toast } from "./uiState";

/** Run-state ids of nodes at the open level start with this ("5/" inside subgraph node 5). */
export function levelPrefix(stack: OpenLevel[]): string {
  return stack.length ? stack.map((level) => level.nodeId).join("/") + "/" : "";
}

/** Ids of the nodes at the workflow's own level (errors name them, or paths under them). */
export function rootNodeIds(): Set<string> {
  const { stack, nodes } = graphStore.get();
  return new Set((stack.length ? stack[0].nodes : nodes).map((n) => n.id));
}

/** The definitions reachable from a level's nodes (directly or nested), which a save keeps. */
export function usedDefinitions(nodes: Record<string, WorkflowNode>, defs: Record<string, SubgraphDef>): Record<string, SubgraphDef> {
  const used: Record<string, SubgraphDef> = {};
  const visit = (level: Record<string, WorkflowNode>) => {
    for (const node of Object.values(level)) {
      const id = node.type === SUBGRAPH_TYPE ? node.subgraph : undefined;
      if (!id || used[id] || !defs[id]) continue;
      used[id] = defs[id];
      visit(defs[id].nodes ?? {});
    }
  };
  visit(nodes);
  return used;
}

/** A definition from the level being edited inside it. */
function levelToDefinition(old: SubgraphDef, nodes: EditorNode[], edges: GraphEdge[]): SubgraphDef {
  const { catalog } = catalogStore.get();
  const doc = graphToDoc(nodes, edges, catalog);
  const panelIn = nodes.find((n) => n.id === IO_IN);
  const panelOut = nodes.find((n) => n.id === IO_OUT);
  const inputs = panelIn && isIoNode(panelIn) ? panelIn.data.items : old.inputs;
  const outputs = (panelOut && isIoNode(panelOut) ? panelOut.data.items : old.outputs).map((o) => {
    const from = doc.outputs[o.name];
    return { name: o.name, type: o.type, ...(from ? { from } : {}) };
  });
  const ui: SubgraphDef["ui"] = { ...doc.ui };
  if (panelIn && panelOut) {
    ui.io = {
      in: [Math.round(panelIn.position.x), Math.round(panelIn.position.y)],
      out: [Math.round(panelOut.position.x), Math.round(panelOut.position.y)],
    };
  }
  const def: SubgraphDef = { name: old.name, inputs, outputs, nodes: doc.nodes, ui };
  if (old.description) def.description = old.description;
  return def;
}

/** Bring Subgraph nodes in line with their (edited) definitions: sockets, widgets, wires. */
export function syncSubgraphNodes(
  nodes: EditorNode[],
  edges: GraphEdge[],
  defs: Record<string, SubgraphDef>,
): { nodes: EditorNode[]; edges: GraphEdge[] } {
  const { catalog, dynamicChoices } = catalogStore.get();
  if (!catalog) return { nodes, edges };
  const changed = new Map<string, GraphNode>();
  const synced = nodes.map((n) => {
    if (!isGraphNode(n) || !n.data.subgraph || !defs[n.data.subgraph]) return n;
    const decl = subgraphDecl(n.data.subgraph, defs[n.data.subgraph], catalog, defs);
    if (JSON.stringify(decl) === JSON.stringify(n.data.subgraphDecl)) return n;
    const values = { ...n.data.values };
    for (const input of decl.inputs) {
      if (isValueType(catalog, input.type) && !(input.name in values)) values[input.name] = defaultValue(input, dynamicChoices);
    }
    const node: GraphNode = { ...n, data: { ...n.data, subgraphDecl: decl, values } };
    changed.set(n.id, node);
    return node;
  });
  if (!changed.size) return { nodes, edges };
  const byId = new Map(synced.map((n) => [n.id, n]));
  const kept = edges.filter((e) => {
    const source = byId.get(e.source);
    const target = byId.get(e.target);
    if (changed.has(e.source) && source && isGraphNode(source) && !declOf(catalog, source.data)?.outputs.some((o) => o.name === e.sourceHandle)) return false;
    if (changed.has(e.target) && target && isGraphNode(target) && !declOf(catalog, target.data)?.inputs.some((i) => i.name === e.targetHandle)) return false;
    return true;
  });
  return { nodes: synced, edges: kept };
}

/** The workflow being edited, with the levels open inside subgraphs folded back in. */
export function rootWorkflow(currentViewport?: { x: number; y: number; zoom: number }, s: GraphState = graphStore.get()): Workflow {
  const { catalog } = catalogStore.get();
  let { nodes, edges, subgraphs } = s;
  for (let i = s.stack.length - 1; i >= 0; i--) {
    const level = s.stack[i];
    subgraphs = { ...subgraphs, [level.defId]: levelToDefinition(subgraphs[level.defId], nodes, edges) };
    ({ nodes, edges } = syncSubgraphNodes(level.nodes, level.edges, subgraphs));
  }
  const viewport = s.stack.length ? s.stack[0].viewport : currentViewport ?? s.viewport;
  const workflow = graphToWorkflow(nodes, edges, catalog, viewport, undefined, s.extraUi);
  const used = usedDefinitions(workflow.nodes, subgraphs);
  if (Object.keys(used).length) workflow.subgraphs = used;
  return workflow;
}

function levelGraph(def: SubgraphDef, defs: Record<string, SubgraphDef>) {
  const { catalog, dynamicChoices } = catalogStore.get();
  return docToGraph({ nodes: def.nodes ?? {}, ui: def.ui, io: { inputs: def.inputs ?? [], outputs: def.outputs ?? [] } }, catalog!, dynamicChoices, defs);
}

function fitSoon(): void {
  window.requestAnimationFrame(() => void getFlowInstance()?.fitView({ padding: 0.15, maxZoom: 1 }));
}

/** Edit the definition of a Subgraph node of the open level. */
export function openSubgraph(nodeId: string): void {
  const s = graphStore.get();
  const node = s.nodes.find((n) => n.id === nodeId);
  if (!node || !isGraphNode(node) || !node.data.subgraph) return;
  const def = s.subgraphs[node.data.subgraph];
  if (!def) {
    toast("error", `The definition of subgraph ${node.data.subgraph} is missing`);
    return;
  }
  if (s.stack.some((level) => level.defId === node.data.subgraph)) {
    toast("error", "This subgraph is already open (it contains itself)");
    return;
  }
  const level = levelGraph(def, s.subgraphs);
  const entry: OpenLevel = {
    nodes: s.nodes,
    edges: s.edges,
    past: s.past,
    future: s.future,
    viewport: getFlowInstance()?.getViewport() ?? s.viewport,
    nodeId,
    defId: node.data.subgraph,
    title: node.data.title || def.name || node.data.subgraph,
    subgraphs: s.subgraphs,
  };
  graphStore.set({ nodes: level.nodes, edges: level.edges, past: [], future: [], stack: [...s.stack, entry] });
  fitSoon();
}

/** Go back out to the level at `depth` (0: the workflow), saving the edits into the definitions. */
export function closeSubgraphs(depth: number): void {
  while (graphStore.get().stack.length > depth) {
    const s = graphStore.get();
    const level = s.stack[s.stack.length - 1];
    const def = levelToDefinition(s.subgraphs[level.defId], s.nodes, s.edges);
    const edited = JSON.stringify(def) !== JSON.stringify(s.subgraphs[level.defId]);
    const subgraphs = edited ? { ...s.subgraphs, [level.defId]: def } : s.subgraphs;
    const { nodes, edges } = syncSubgraphNodes(level.nodes, level.edges, subgraphs);
    graphStore.set({
      nodes,
      edges,
      subgraphs,
      // Everything done inside is one undo step out here.
      past: edited ? [...level.past, { nodes: level.nodes, edges: level.edges, subgraphs: level.subgraphs }] : level.past,
      future: edited ? [] : level.future,
      stack: s.stack.slice(0, -1),
      dirty: s.dirty || edited,
    });
    const viewport = level.viewport;
    window.requestAnimationFrame(() => void getFlowInstance()?.setViewport(viewport));
  }
}

function uniqueName(base: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  let name = base;
  for (let i = 2; used.has(name); i++) name = `${base}_${i}`;
  return name;
}

/** A definition id not used in the workflow, from a readable base ("upscale-sharpen"). */
function freshDefId(base: string, defs: Record<string, SubgraphDef>): string {
  const slug = base.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "subgraph";
  return uniqueName(slug, Object.keys(defs));
}

/**
 * Replace the selected nodes by one Subgraph node. Its inputs are the links that came into the
 * selection (one per distinct source), its outputs the selection's outputs used outside.
 */
export function makeSubgraph(ids: string[]): string | null {
  const s = graphStore.get();
  const { catalog, dynamicChoices } = catalogStore.get();
  const selected = new Set(ids.filter((id) => s.nodes.some((n) => n.id === id && isGraphNode(n))));
  if (!catalog || !selected.size) return null;
  const doc = graphToDoc(s.nodes, s.edges, catalog);
  const byId = new Map(s.nodes.map((n) => [n.id, n]));
  const inputType = (nodeId: string, name: string) => {
    const n = byId.get(nodeId);
    return n && isGraphNode(n) ? declOf(catalog, n.data)?.inputs.find((i) => i.name === name)?.type : undefined;
  };
  const outputType = (nodeId: string, name: string) => {
    const n = byId.get(nodeId);
    return n && isGraphNode(n) ? declOf(catalog, n.data)?.outputs.find((o) => o.name === name)?.type : undefined;
  };

  // Links coming in become the definition's inputs.
  const inputs: SubgraphIo[] = [];
  const inputBySource = new Map<string, string>();
  const outerInputs: Record<string, InputValue> = {};
  const inner: Record<string, WorkflowNode> = {};
  for (const id of selected) {
    const wn: WorkflowNode = structuredClone(doc.nodes[id]);
    if (wn.ui) delete wn.ui.via;
    for (const [name, value] of Object.entries(wn.inputs)) {
      const outside = (isLink(value) && !selected.has(value.node)) || isSubgraphInput(value);
      if (!outside) continue;
      const key = JSON.stringify(value);
      let ioName = inputBySource.get(key);
      if (!ioName) {
        ioName = uniqueName(name, inputs.map((i) => i.name));
        inputs.push({ name: ioName, type: inputType(id, name) ?? "*" });
        inputBySource.set(key, ioName);
        outerInputs[ioName] = value;
      }
      wn.inputs[name] = { subgraph_input: ioName };
    }
    inner[id] = wn;
  }

  // Outputs used outside become the definition's outputs.
  const defId = freshDefId("subgraph", s.subgraphs);
  const newId = nextNodeId(s.nodes);
  const outputs: SubgraphDef["outputs"] = [];
  const outputBySource = new Map<string, string>();
  const redirect = (link: LinkRef): LinkRef => {
    if (!selected.has(link.node)) return link;
    const key = `${link.node}\u0000${link.output}`;
    let name = outputBySource.get(key);
    if (!name) {
      name = uniqueName(link.output, outputs.map((o) => o.name));
      outputs.push({ name, type: outputType(link.node, link.output) ?? "*", from: { ...link } });
      outputBySource.set(key, name);
    }
    return { node: newId, output: name };
  };
  const outer: Record<string, WorkflowNode> = {};
  for (const [id, wn] of Object.entries(doc.nodes)) {
    if (selected.has(id)) continue;
    const inputsOut: Record<string, InputValue> = {};
    for (const [name, value] of Object.entries(wn.inputs)) inputsOut[name] = isLink(value) ? redirect(value) : value;
    outer[id] = { ...wn, inputs: inputsOut };
  }
  const reroutes = structuredClone(doc.ui.reroutes ?? {});
  for (const r of Object.values(reroutes)) if (isLink(r.from)) r.from = redirect(r.from);
  const ioOutputs = Object.entries(doc.outputs).map(([name, link]) => [name, isLink(link) ? redirect(link) : link] as const);

  // Place the new node where the selection was; keep the inner layout, panels either side.
  const positions = [...selected].map((id) => byId.get(id)!.position);
  const minX = Math.min(...positions.map((p) => p.x));
  const minY = Math.min(...positions.map((p) => p.y));
  const maxX = Math.max(...positions.map((p) => p.x));
  const def: SubgraphDef = {
    name: "New subgraph",
    inputs,
    outputs,
    nodes: inner,
    ui: { io: { in: [Math.round(minX - 320), Math.round(minY)], out: [Math.round(maxX + 380), Math.round(minY)] } },
  };
  const subgraphs = { ...s.subgraphs, [defId]: def };
  outer[newId] = { type: SUBGRAPH_TYPE, subgraph: defId, inputs: outerInputs, ui: { position: [Math.round(minX), Math.round(minY)] } };

  const panelIn = s.nodes.find((n) => n.id === IO_IN);
  const panelOut = s.nodes.find((n) => n.id === IO_OUT);
  const io =
    panelIn && panelOut && isIoNode(panelIn) && isIoNode(panelOut)
      ? {
          inputs: panelIn.data.items,
          outputs: panelOut.data.items.map((o) => {
            const from = ioOutputs.find(([name]) => name === o.name)?.[1];
            return { ...o, ...(from ? { from } : {}) };
          }),
        }
      : undefined;
  const ui = {
    ...doc.ui,
    reroutes,
    ...(io ? { io: { in: [panelIn!.position.x, panelIn!.position.y] as [number, number], out: [panelOut!.position.x, panelOut!.position.y] as [number, number] } } : {}),
  };
  const level = docToGraph({ nodes: outer, ui, io }, catalog, dynamicChoices, subgraphs);
  // The new node is the selection.
  const select = (n: EditorNode) => ({ ...n, selected: n.id === newId });
  commit();
  graphStore.set({ nodes: level.nodes.map(select), edges: level.edges, subgraphs });
  return newId;
}

/** Definitions of `incoming` added to `target` under ids that do not clash; returns the id map. */
function mergeDefinitions(target: Record<string, SubgraphDef>, incoming: Record<string, SubgraphDef>): Map<string, string> {
  const idMap = new Map<string, string>();
  for (const [id, def] of Object.entries(incoming)) {
    const same = Object.entries(target).find(([, d]) => JSON.stringify(d) === JSON.stringify(def));
    idMap.set(id, same ? same[0] : target[id] ? freshDefId(id, target) : id);
    if (!same) target[idMap.get(id)!] = def;
  }
  // Nested uses follow the new ids.
  for (const newId of idMap.values()) {
    const def = target[newId];
    if (!def || !Object.values(def.nodes).some((n) => n.subgraph && idMap.has(n.subgraph) && idMap.get(n.subgraph) !== n.subgraph)) continue;
    const nodes: Record<string, WorkflowNode> = {};
    for (const [k, n] of Object.entries(def.nodes)) nodes[k] = n.subgraph && idMap.has(n.subgraph) ? { ...n, subgraph: idMap.get(n.subgraph) } : n;
    target[newId] = { ...def, nodes };
  }
  return idMap;
}

/** Add a saved component to the open level as a new Subgraph node. */
export async function insertComponent(name: string, position: { x: number; y: number }): Promise<string | null> {
  try {
    const { definition } = await api.getComponent(name);
    const { catalog, dynamicChoices } = catalogStore.get();
    if (!catalog) return null;
    const s = graphStore.get();
    const { subgraphs: nested, ...def } = definition;
    const defs = { ...s.subgraphs };
    const nestedIds = mergeDefinitions(defs, nested ?? {});
    const nodes: Record<string, WorkflowNode> = {};
    for (const [k, n] of Object.entries(def.nodes)) nodes[k] = n.subgraph && nestedIds.has(n.subgraph) ? { ...n, subgraph: nestedIds.get(n.subgraph) } : n;
    const ids = mergeDefinitions(defs, { [freshDefId(name, {})]: { ...def, nodes } });
    const defId = [...ids.values()][0];
    const decl = subgraphDecl(defId, defs[defId], catalog, defs);
    const values: GraphNodeData["values"] = {};
    for (const input of decl.inputs) if (isValueType(catalog, input.type)) values[input.name] = defaultValue(input, dynamicChoices);
    const data: GraphNodeData = { type: SUBGRAPH_TYPE, subgraph: defId, subgraphDecl: decl, mode: "active", values, control: {} };
    commit();
    graphStore.set({ subgraphs: defs });
    const id = nextNodeId(graphStore.get().nodes);
    graphStore.set((st) => ({
      nodes: [...st.nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), { id, type: "graph", position, data, selected: true }],
    }));
    return id;
  } catch (err) {
    toast("error", `Cannot insert the component “${name}”: ${err instanceof Error ? err.message : String(err)}`);
    return null;
  }
}

/** Save the definition of a Subgraph node to the components library (with the ones it uses). */
export async function saveComponent(nodeId: string, name: string): Promise<boolean> {
  const workflow = rootWorkflow();
  const s = graphStore.get();
  const node = s.nodes.find((n) => n.id === nodeId);
  const defId = node && isGraphNode(node) ? node.data.subgraph : undefined;
  const defs = { ...(workflow.subgraphs ?? {}), ...s.subgraphs };
  const def = defId ? defs[defId] : undefined;
  if (!def) return false;
  const definition: SubgraphDef = { ...def, name };
  const nested = usedDefinitions(def.nodes, defs);
  if (Object.keys(nested).length) definition.subgraphs = nested;
  try {
    await api.saveComponent(name, definition);
    toast("success", `Saved the component “${name}”`);
    window.dispatchEvent(new Event("latentgraph:components"));
    return true;
  } catch (err) {
    toast("error", `Cannot save the component: ${err instanceof Error ? err.message : String(err)}`);
    return false;
  }
}

/** The saved components, for the node library and the search box (refreshed after a save). */
export async function listComponents(): Promise<string[]> {
  try {
    const { components } = await api.listComponents();
    return (components ?? []).map((c) => c.name);
  } catch {
    return [];
  }
}
