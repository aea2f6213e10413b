// New nodes take sizes that suit the checkpoint the graph loads: an EmptyLatentImage added next to
// tiny-shapes (64 px) starts at 64 x 64, not at the catalog's 512. The server tells each
// checkpoint's native resolution (GET /api/checkpoints "details"); without it, nothing changes.
import { catalogStore } from "../catalog";
import { declOf, type EditorNode, isGraphNode } from "../graphModel";
import type { Constant, InputDecl, NodeDecl } from "../types";

/** The checkpoint most nodes of the graph load (by their checkpoint-list inputs). */
export function graphCheckpoint(nodes: EditorNode[]): string | null {
  const { catalog } = catalogStore.get();
  const counts = new Map<string, number>();
  for (const node of nodes) {
    if (!isGraphNode(node) || node.data.mode === "muted") continue;
    for (const input of declOf(catalog, node.data)?.inputs ?? []) {
      const value = node.data.values[input.name];
      if (input.choices_from === "checkpoints" && typeof value === "string") counts.set(value, (counts.get(value) ?? 0) + 1);
    }
  }
  let best: string | null = null;
  for (const [name, count] of counts) if (best === null || count > counts.get(best)!) best = name;
  return best;
}

function fit(input: InputDecl, value: number): number {
  const step = input.step && input.step > 0 ? input.step : 1;
  let v = Math.round(value / step) * step;
  if (input.min !== undefined) v = Math.max(input.min, v);
  if (input.max !== undefined) v = Math.min(input.max, v);
  return v;
}

/** Width and height values for a new node of `decl`, or nothing to change. */
export function checkpointDefaults(decl: NodeDecl, values: Record<string, Constant>, nodes: EditorNode[]): Record<string, Constant> {
  const width = decl.inputs.find((i) => i.name === "width" && i.type === "INT");
  const height = decl.inputs.find((i) => i.name === "height" && i.type === "INT");
  if (!width || !height || !("width" in values) || !("height" in values)) return {};
  const name = graphCheckpoint(nodes);
  const resolution = name ? catalogStore.get().checkpointDetails[name]?.resolution : undefined;
  if (!Array.isArray(resolution) || resolution.length !== 2) return {};
  return { width: fit(width, resolution[0]), height: fit(height, resolution[1]) };
}
