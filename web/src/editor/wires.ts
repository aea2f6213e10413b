// Wires as a ComfyUI user expects them: dragging from a connected input picks its wire up (drop it
// on another input to move it, on nothing to delete it); a wire dropped on a node's body plugs into
// its first compatible socket; a new wire dropped on empty canvas opens the search box.
import type { Connection, FinalConnectionState, ReactFlowState } from "@xyflow/react";
import { XYHandle } from "@xyflow/system";
import { catalogStore } from "../catalog";
import { edgeId, makeEdge, nextLocalId, nodeDecl, REROUTE_IN, REROUTE_OUT } from "../graphModel";
import { flowPosition } from "./flow";
import { commit, connect, findNode, firstCompatibleHandle, graphStore, isValidConnection } from "./graphStore";
import { openSearch } from "./uiState";

/** The id of the node whose body is under a screen point (not a socket), if any. */
function nodeUnder(x: number, y: number): string | null {
  const el = document.elementFromPoint(x, y)?.closest(".react-flow__node");
  return el?.getAttribute("data-id") ?? null;
}

export function socketType(nodeId: string, handleId: string | null, kind: "source" | "target"): string | undefined {
  const decl = nodeDecl(catalogStore.get().catalog, findNode(nodeId));
  if (!decl || !handleId) return undefined;
  return kind === "source" ? decl.outputs.find((o) => o.name === handleId)?.type : decl.inputs.find((i) => i.name === handleId)?.type;
}

/** Plug a wire held from (`from`) into the first fitting socket of the node under the pointer. */
function dropOnNode(from: { nodeId: string; id?: string | null; type: "source" | "target" }, x: number, y: number): boolean {
  const target = nodeUnder(x, y);
  const type = socketType(from.nodeId, from.id ?? null, from.type);
  if (!target || target === from.nodeId || !type || !from.id) return false;
  const handle = firstCompatibleHandle(target, from.type === "source" ? "target" : "source", type);
  if (!handle) return false;
  const c =
    from.type === "source"
      ? { source: from.nodeId, sourceHandle: from.id, target, targetHandle: handle }
      : { source: target, sourceHandle: handle, target: from.nodeId, targetHandle: from.id };
  if (!isValidConnection(c)) return false;
  connect(c);
  return true;
}

/** The end of a wire drag that started on a socket (React Flow's onConnectEnd). */
export function endNewWire(event: MouseEvent | TouchEvent, state: FinalConnectionState): void {
  if (state.isValid || !state.fromHandle || !state.fromNode) return;
  const { clientX, clientY } = "changedTouches" in event ? event.changedTouches[0] : event;
  const from = state.fromHandle;
  if (dropOnNode(from, clientX, clientY)) return;
  if (state.toHandle) return; // dropped on a socket that does not fit: nothing happens
  const type = socketType(from.nodeId, from.id ?? null, from.type);
  if (!type || !from.id || nodeUnder(clientX, clientY)) return;
  const screen = { x: clientX, y: clientY };
  openSearch({
    screen,
    flow: flowPosition(screen),
    filter: type === "*" ? undefined : from.type === "source" ? { inputType: type } : { outputType: type },
    dangling: { nodeId: from.nodeId, handleId: from.id, handleType: from.type, type },
  });
}

/**
 * Mouse down on an input socket that has a wire: lift the wire off it and carry it from its source.
 * Returns false when there is no wire to pick up (React Flow then starts a new one as usual).
 */
export function pickUpWire(event: MouseEvent, handle: HTMLElement, store: { getState(): ReactFlowState }): boolean {
  const nodeId = handle.getAttribute("data-nodeid");
  const handleId = handle.getAttribute("data-handleid");
  if (!nodeId || !handleId) return false;
  const edge = graphStore.get().edges.find((e) => e.id === edgeId(nodeId, handleId));
  if (!edge || !edge.sourceHandle) return false;
  commit();
  graphStore.set((s) => ({ edges: s.edges.filter((e) => e.id !== edge.id) }));
  const source = { nodeId: edge.source, id: edge.sourceHandle, type: "source" as const };
  const flow = store.getState();
  let connected = false;
  XYHandle.onPointerDown(event, {
    handleDomNode: handle,
    edgeUpdaterType: "source",
    autoPanOnConnect: flow.autoPanOnConnect,
    connectionMode: flow.connectionMode,
    connectionRadius: flow.connectionRadius,
    domNode: flow.domNode,
    nodeLookup: flow.nodeLookup,
    lib: flow.lib,
    isTarget: false,
    handleId: edge.sourceHandle,
    nodeId: edge.source,
    flowId: flow.rfId,
    panBy: flow.panBy,
    cancelConnection: flow.cancelConnection,
    updateConnection: flow.updateConnection,
    getTransform: () => store.getState().transform,
    getFromHandle: () => store.getState().connection.fromHandle,
    autoPanSpeed: flow.autoPanSpeed,
    dragThreshold: 0,
    isValidConnection: (c) => isValidConnection(c as Connection),
    onConnect: (c) => {
      connected = true;
      connect(c, { undoable: false });
    },
    onConnectEnd: (end) => {
      if (connected || !end) return;
      const { clientX, clientY } = "changedTouches" in end ? end.changedTouches[0] : end;
      // Dropped on a node's body: plug in there; on nothing: the wire stays deleted.
      dropOnNode(source, clientX, clientY);
    },
  });
  return true;
}

/** Put a reroute point on a wire, at a flow position. */
export function addRerouteOnWire(wireId: string, position: { x: number; y: number }): string | null {
  const { nodes, edges } = graphStore.get();
  const edge = edges.find((e) => e.id === wireId);
  if (!edge || !edge.sourceHandle || !edge.targetHandle) return null;
  const type = edge.data?.type ?? "*";
  const id = nextLocalId("r", nodes);
  commit();
  graphStore.set((s) => ({
    nodes: [...s.nodes, { id, type: "reroute", position: { x: position.x - 9, y: position.y - 9 }, data: { wireType: type } }],
    edges: [
      ...s.edges.filter((e) => e.id !== wireId),
      makeEdge(edge.source, edge.sourceHandle!, id, REROUTE_IN, type),
      makeEdge(id, REROUTE_OUT, edge.target, edge.targetHandle!, type),
    ],
  }));
  return id;
}

/** A reroute point on its own (the canvas menu), to wire later. */
export function addReroute(position: { x: number; y: number }): string {
  const id = nextLocalId("r", graphStore.get().nodes);
  commit();
  graphStore.set((s) => ({ nodes: [...s.nodes, { id, type: "reroute", position, data: { wireType: "*" } }] }));
  return id;
}
