// Auto-arrange: a layered left-to-right layout of the selection (or of the whole level) computed
// by dagre (loaded on first use, it is not needed to open the editor), placed where the selection
// was. Groups are left where they are.
import { type EditorNode, isFrame } from "../graphModel";
import { commit, graphStore } from "./graphStore";

function size(n: EditorNode): [number, number] {
  return [n.measured?.width ?? n.width ?? 240, n.measured?.height ?? n.height ?? 120];
}

/** Lay out `ids` (all nodes when fewer than two are given); resolves to how many moved. */
export async function arrange(ids: string[]): Promise<number> {
  const { default: dagre } = await import("@dagrejs/dagre");
  const { nodes, edges } = graphStore.get();
  const chosen = new Set((ids.length >= 2 ? nodes.filter((n) => ids.includes(n.id)) : nodes).filter((n) => !isFrame(n) && n.draggable !== false).map((n) => n.id));
  if (chosen.size < 2) return 0;
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 40, ranksep: 90, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) {
    if (!chosen.has(n.id)) continue;
    const [width, height] = size(n);
    g.setNode(n.id, { width, height });
  }
  for (const e of edges) if (chosen.has(e.source) && chosen.has(e.target)) g.setEdge(e.source, e.target);
  dagre.layout(g);

  // Keep the arranged block's top-left corner where the selection's was.
  const before = nodes.filter((n) => chosen.has(n.id));
  const left = Math.min(...before.map((n) => n.position.x));
  const top = Math.min(...before.map((n) => n.position.y));
  const placed = new Map<string, { x: number; y: number }>();
  for (const id of chosen) {
    const p = g.node(id);
    const [w, h] = size(nodes.find((n) => n.id === id)!);
    placed.set(id, { x: p.x - w / 2, y: p.y - h / 2 });
  }
  const minX = Math.min(...[...placed.values()].map((p) => p.x));
  const minY = Math.min(...[...placed.values()].map((p) => p.y));
  commit();
  graphStore.set((s) => ({
    nodes: s.nodes.map((n) => {
      const p = placed.get(n.id);
      return p ? { ...n, position: { x: Math.round(p.x - minX + left), y: Math.round(p.y - minY + top) } } : n;
    }),
  }));
  return chosen.size;
}
