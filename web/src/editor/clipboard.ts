// Copy and paste of nodes. The clipboard holds a workflow fragment in our format (in localStorage,
// so it also works between tabs).
import type { XYPosition } from "@xyflow/react";
import { catalogStore } from "../catalog";
import { declOf, graphToWorkflow, isLink, makeEdge, renumberFragment, workflowToGraph } from "../graphModel";
import type { Workflow } from "../types";
import { commit, graphStore } from "./graphStore";

const CLIPBOARD_KEY = "latentgraph.clipboard";

export function copySelection(): number {
  const { nodes, edges } = graphStore.get();
  const selected = nodes.filter((n) => n.selected);
  if (!selected.length) return 0;
  const ids = new Set(selected.map((n) => n.id));
  const fragment = graphToWorkflow(
    selected,
    edges.filter((e) => ids.has(e.target)),
    catalogStore.get().catalog,
  );
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
  const { nodes, edges } = graphStore.get();
  const { workflow } = renumberFragment(fragment, nodes.map((n) => n.id), keepInputLinks);
  const loaded = workflowToGraph(workflow, catalog, dynamicChoices);
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
      const output = declOf(catalog, source.data)?.outputs.find((o) => o.name === value.output);
      if (output) outside.push(makeEdge(source.id, output.name, id, name, output.type));
    }
  }

  commit();
  graphStore.set({
    nodes: [...nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), ...loaded.nodes],
    edges: [...edges, ...loaded.edges, ...outside],
  });
  return loaded.nodes.length;
}
