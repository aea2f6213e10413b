// Access to the React Flow instance outside components, and the last pointer position.
import type { ReactFlowInstance, XYPosition } from "@xyflow/react";
import type { EditorNode, GraphEdge } from "../graphModel";

let flow: ReactFlowInstance<EditorNode, GraphEdge> | null = null;

export function setFlowInstance(instance: ReactFlowInstance<EditorNode, GraphEdge>): void {
  flow = instance;
}

export function getFlowInstance(): ReactFlowInstance<EditorNode, GraphEdge> | null {
  return flow;
}

/** The last pointer position over the canvas, in screen pixels (for paste and the search key). */
export const pointer: { screen: XYPosition | null } = { screen: null };

export function flowPosition(screen: XYPosition): XYPosition {
  return flow?.screenToFlowPosition(screen) ?? screen;
}

export function fitView(): void {
  void flow?.fitView({ padding: 0.15, maxZoom: 1, duration: 200 });
}

/**
 * Run `change` (which narrows the canvas from the right, e.g. opens the queue panel) and then pan so
 * that the graph's right end (its outputs, where results appear) stays in view, if it was in view.
 * Graphs that fit keep their left end in view too.
 */
export function keepRightEndInView(change: () => void): void {
  const canvas = document.querySelector<HTMLElement>("[data-testid=canvas]");
  const nodes = flow?.getNodes() ?? [];
  if (!flow || !canvas || !nodes.length) {
    change();
    return;
  }
  const instance = flow;
  const box = instance.getNodesBounds(nodes);
  const before = canvas.getBoundingClientRect();
  change();
  // After React has rendered the panel and before the browser paints it.
  requestAnimationFrame(() => {
    const after = canvas.getBoundingClientRect();
    const left = instance.flowToScreenPosition({ x: box.x, y: box.y }).x;
    const right = instance.flowToScreenPosition({ x: box.x + box.width, y: box.y }).x;
    const margin = 16;
    if (right > before.right + 1 || right <= after.right - margin) return;
    let shift = right - (after.right - margin);
    if (right - left <= after.width - 2 * margin) shift = Math.min(shift, Math.max(0, left - (after.left + margin)));
    if (shift <= 0) return;
    const viewport = instance.getViewport();
    void instance.setViewport({ ...viewport, x: viewport.x - shift });
  });
}
