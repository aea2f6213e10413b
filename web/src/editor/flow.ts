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
