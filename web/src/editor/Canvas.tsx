// The graph canvas: React Flow wired to the graph store, drops, the search box, connection rules.
import {
  Background,
  BackgroundVariant,
  ConnectionMode,
  Controls,
  getBezierPath,
  MiniMap,
  ReactFlow,
  SelectionMode,
  type ConnectionLineComponentProps,
  type FinalConnectionState,
  type OnConnectEnd,
} from "@xyflow/react";
import { useCallback, useRef, type DragEvent, type MouseEvent as ReactMouseEvent } from "react";
import { catalogStore, typeColor } from "../catalog";
import { declOf, type GraphEdge, type GraphNode } from "../graphModel";
import { GraphNode as GraphNodeView } from "../nodes/GraphNode";
import { NODE_DRAG_MIME } from "../panels/Palette";
import { useStore } from "../store";
import {
  addNode,
  commit,
  connect,
  graphStore,
  isValidConnection,
  onEdgesChange,
  onNodesChange,
  removeEdge,
  setViewport,
} from "./graphStore";
import { flowPosition, pointer, setFlowInstance } from "./flow";
import { runStore } from "./runState";
import { openContextMenu, openSearch } from "./uiState";
import { openFile } from "./workflowIO";

const nodeTypes = { graph: GraphNodeView };

function handleType(nodeId: string, handleId: string | null, kind: "source" | "target"): string | undefined {
  const node = graphStore.get().nodes.find((n) => n.id === nodeId);
  const decl = node && declOf(catalogStore.get().catalog, node.data);
  if (!decl || !handleId) return undefined;
  return kind === "source"
    ? decl.outputs.find((o) => o.name === handleId)?.type
    : decl.inputs.find((i) => i.name === handleId)?.type;
}

/** The wire being dragged, coloured by its type; red while over an incompatible socket. */
function ConnectionLine({ fromX, fromY, toX, toY, fromPosition, toPosition, fromHandle, connectionStatus }: ConnectionLineComponentProps<GraphNode>) {
  const type = handleType(fromHandle.nodeId, fromHandle.id ?? null, fromHandle.type);
  const [path] = getBezierPath({ sourceX: fromX, sourceY: fromY, sourcePosition: fromPosition, targetX: toX, targetY: toY, targetPosition: toPosition });
  const stroke = connectionStatus === "invalid" ? "#ff4d4d" : type ? typeColor(type) : "#ccc";
  return <path d={path} fill="none" stroke={stroke} strokeWidth={2.5} className="connection-line" />;
}

function miniMapColor(node: GraphNode): string {
  const run = runStore.get();
  if (run.errors[node.id]) return "#c0392b";
  if (run.executing === node.id) return "#3fb950";
  return node.data.mode === "active" ? "#4a4f5a" : "#2a2d33";
}

export function Canvas({ onReady }: { onReady: () => void }) {
  const nodes = useStore(graphStore, (s) => s.nodes);
  const edges = useStore(graphStore, (s) => s.edges);
  const reconnected = useRef(false);
  const wrapper = useRef<HTMLDivElement>(null);

  const onConnectEnd: OnConnectEnd = useCallback((event, state: FinalConnectionState) => {
    if (state.isValid || state.toNode || !state.fromHandle || !state.fromNode) return;
    const { clientX, clientY } = "changedTouches" in event ? event.changedTouches[0] : event;
    const from = state.fromHandle;
    const type = handleType(from.nodeId, from.id ?? null, from.type);
    if (!type || !from.id) return;
    const screen = { x: clientX, y: clientY };
    openSearch({
      screen,
      flow: flowPosition(screen),
      filter: from.type === "source" ? { inputType: type } : { outputType: type },
      dangling: { nodeId: from.nodeId, handleId: from.id, handleType: from.type, type },
    });
  }, []);

  const onDoubleClick = (event: ReactMouseEvent) => {
    if (!(event.target as Element).classList.contains("react-flow__pane")) return;
    const screen = { x: event.clientX, y: event.clientY };
    openSearch({ screen, flow: flowPosition(screen) });
  };

  const onDragOver = (event: DragEvent) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = event.dataTransfer.types.includes(NODE_DRAG_MIME) ? "copy" : "move";
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    const type = event.dataTransfer.getData(NODE_DRAG_MIME);
    if (type) {
      addNode(type, flowPosition({ x: event.clientX, y: event.clientY }));
      return;
    }
    const file = event.dataTransfer.files?.[0];
    if (file) void openFile(file);
  };

  return (
    <div
      className="canvas"
      ref={wrapper}
      data-testid="canvas"
      onDoubleClick={onDoubleClick}
      onDragOver={onDragOver}
      onDrop={onDrop}
      onMouseMove={(e) => (pointer.screen = { x: e.clientX, y: e.clientY })}
    >
      <ReactFlow<GraphNode, GraphEdge>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onInit={(instance) => {
          setFlowInstance(instance);
          onReady();
        }}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={connect}
        isValidConnection={isValidConnection}
        onConnectEnd={onConnectEnd}
        connectionMode={ConnectionMode.Strict}
        connectionLineComponent={ConnectionLine}
        edgesReconnectable
        onReconnectStart={() => (reconnected.current = false)}
        onReconnect={(oldEdge, connection) => {
          reconnected.current = true;
          if (oldEdge.target === connection.target && oldEdge.targetHandle === connection.targetHandle && oldEdge.source === connection.source && oldEdge.sourceHandle === connection.sourceHandle) return;
          commit();
          graphStore.set((s) => ({ edges: s.edges.filter((e) => e.id !== oldEdge.id) }));
          connect(connection);
        }}
        onReconnectEnd={(_, edge) => {
          // A wire dragged off its input and dropped on nothing is removed (as in ComfyUI).
          if (!reconnected.current) removeEdge(edge.id);
        }}
        onBeforeDelete={async () => {
          commit();
          return true;
        }}
        onNodeDragStart={() => commit()}
        onSelectionDragStart={() => commit()}
        onMoveEnd={(_, viewport) => setViewport(viewport)}
        onNodeContextMenu={(event, node) => {
          event.preventDefault();
          openContextMenu({ screen: { x: event.clientX, y: event.clientY }, nodeId: node.id });
        }}
        onPaneContextMenu={(event) => {
          event.preventDefault();
          openContextMenu({ screen: { x: event.clientX, y: event.clientY } });
        }}
        deleteKeyCode={["Delete", "Backspace"]}
        selectionKeyCode={["Shift", "Control"]}
        multiSelectionKeyCode={["Shift", "Control", "Meta"]}
        selectionMode={SelectionMode.Partial}
        zoomOnDoubleClick={false}
        minZoom={0.1}
        maxZoom={4}
        colorMode="dark"
        attributionPosition="bottom-left"
        fitView={false}
      >
        <Background variant={BackgroundVariant.Dots} gap={20} size={1} color="#3a3d44" />
        <MiniMap<GraphNode> pannable zoomable style={{ width: 180, height: 120 }} nodeColor={miniMapColor} maskColor="rgba(20,21,24,0.7)" data-testid="minimap" />
        <Controls showInteractive={false} position="bottom-left" style={{ bottom: 24 }} />
      </ReactFlow>
    </div>
  );
}
