// Copy and paste of nodes. The clipboard holds a workflow fragment in our format (in localStorage,
// so it also works between tabs), with the subgraph definitions its nodes use.
import type { XYPosition } from "@xyflow/react";
import { catalogStore } from "../catalog";
import { isGraphNode, isLink, makeEdge, nodeDecl, SUBGRAPH_TYPE } from "../graphModel";
import { graphToDoc, renumberFragment, workflowToGraph } from "../workflowJson";
import type { Workflow } from "../types";
import { commit, graphStore } from "./graphStore";
import { usedDefinitions } from "./subgraphs";

const CLIPBOARD_KEY = "latentgraph.clipboard";

export function copySelection(): number {
  const { nodes, edges, subgraphs } = graphStore.get();
  const selected = nodes.filter((n) => n.selected && isGraphNode(n));
  if (!selected.length) return 0;
  const ids = new Set(selected.map((n) => n.id));
  // Links are kept as they resolve through reroutes; links from outside are pasted only on request.
  const doc = graphToDoc(nodes, edges, catalogStore.get().catalog);
  const fragment: Workflow = { format: "latentgraph", version: 3, nodes: {} };
  for (const id of ids) fragment.nodes[id] = doc.nodes[id];
  const defs = usedDefinitions(fragment.nodes, subgraphs);
  if (Object.keys(defs).length) fragment.subgraphs = defs;
  localStorage.setItem(CLIPBOARD_KEY, JSON.stringify(fragment));
  return selected.length;
}

/**
 * Paste the copied nodes with their top-left corner at `at`. Links between pasted nodes are kept;
 * with `keepInputLinks` (Ctrl+Shift+V) so are links from nodes that were not copied.
 */
export function paste(at: XYPosition | null, keepInputLinks: boolean): number {
  const { catalog, dynamicChoices } = catalogStore.get();
  const text = localStorage.getItem(CLIPBOARD_KEY);
  if (!text || !catalog) return 0;
  let fragment: Workflow;
  try {
    fragment = JSON.parse(text) as Workflow;
  } catch {
    return 0;
  }
  const { nodes, edges, subgraphs } = graphStore.get();
  const { workflow } = renumberFragment(fragment, nodes.map((n) => n.id), keepInputLinks);
  // Definitions the pasted nodes use: the workflow's own where it has them, else the copied ones.
  const defs = { ...subgraphs };
  for (const [id, def] of Object.entries(fragment.subgraphs ?? {})) if (!defs[id]) defs[id] = def;
  for (const [id, wn] of Object.entries(workflow.nodes)) {
    if (wn.type === SUBGRAPH_TYPE && !(wn.subgraph && defs[wn.subgraph])) delete workflow.nodes[id];
  }
  const loaded = workflowToGraph({ ...workflow, subgraphs: defs }, catalog, dynamicChoices);
  if (!loaded.nodes.length) return 0;

  const minX = Math.min(...loaded.nodes.map((n) => n.position.x));
  const minY = Math.min(...loaded.nodes.map((n) => n.position.y));
  const target = at ?? { x: minX + 40, y: minY + 40 };
  for (const node of loaded.nodes) {
    node.position = { x: node.position.x - minX + target.x, y: node.position.y - minY + target.y };
    node.selected = true;
  }

  const outside = [];
  const existing = new Map(nodes.map((n) => [n.id, n]));
  for (const [id, wn] of Object.entries(workflow.nodes)) {
    for (const [name, value] of Object.entries(wn.inputs)) {
      const source = isLink(value) ? existing.get(value.node) : undefined;
      if (!source || !isLink(value)) continue;
      const output = nodeDecl(catalog, source)?.outputs.find((o) => o.name === value.output);
      if (output) outside.push(makeEdge(source.id, output.name, id, name, output.type));
    }
  }

  commit();
  graphStore.set({
    nodes: [...nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), ...loaded.nodes],
    edges: [...edges, ...loaded.edges, ...outside],
    subgraphs: defs,
  });
  return loaded.nodes.length;
}
