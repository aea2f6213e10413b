// The graph canvas: React Flow wired to the graph store, drops, the search box, connection rules.
import {
  Background,
  BackgroundVariant,
  ConnectionMode,
  ControlButton,
  Controls,
  getBezierPath,
  MiniMap,
  ReactFlow,
  SelectionMode,
  useStoreApi,
  type ConnectionLineComponentProps,
} from "@xyflow/react";
import { useCallback, useEffect, useRef, type DragEvent, type MouseEvent as ReactMouseEvent, type RefObject } from "react";
import { typeColor } from "../catalog";
import { type EditorNode, type GraphEdge, isGraphNode } from "../graphModel";
import { FrameNode } from "../nodes/FrameNode";
import { FAR_ZOOM, GraphNode as GraphNodeView, TINY_ZOOM } from "../nodes/GraphNode";
import { IoNode } from "../nodes/IoNode";
import { RerouteNode } from "../nodes/RerouteNode";
import { COMPONENT_DRAG_MIME, NODE_DRAG_MIME } from "../panels/Palette";
import { useStore } from "../store";
import { flowPosition, pointer, setFlowInstance } from "./flow";
import { addNode, connect, graphStore, isValidConnection, onEdgesChange, onNodesChange, setViewport, startDrag } from "./graphStore";
import { runStore } from "./runState";
import { insertComponent } from "./subgraphs";
import { MINIMAP_AUTO_LIMIT, openContextMenu, openSearch, toggleMinimap, uiStore, ZOOM_LEVELS, zoomDetail, type ZoomLevelName, zoomStore } from "./uiState";
import { addRerouteOnWire, endNewWire, pickUpWire, socketType } from "./wires";
import { openFile } from "./workflowIO";

const nodeTypes = { graph: GraphNodeView, reroute: RerouteNode, frame: FrameNode, sgio: IoNode };

/** The wire being dragged, coloured by its type; red while over an incompatible socket. */
function ConnectionLine({ fromX, fromY, toX, toY, fromPosition, toPosition, fromHandle, connectionStatus }: ConnectionLineComponentProps<EditorNode>) {
  const type = socketType(fromHandle.nodeId, fromHandle.id ?? null, fromHandle.type);
  const [path] = getBezierPath({ sourceX: fromX, sourceY: fromY, sourcePosition: fromPosition, targetX: toX, targetY: toY, targetPosition: toPosition });
  const stroke = connectionStatus === "invalid" ? "#ff4d4d" : type && type !== "*" ? typeColor(type) : "#ccc";
  return <path d={path} fill="none" stroke={stroke} strokeWidth={2.5} className="connection-line" />;
}

function miniMapColor(node: EditorNode): string {
  if (!isGraphNode(node)) return node.type === "frame" ? "transparent" : "#6b7080";
  const run = runStore.get();
  if (run.errors[node.id]) return "#c0392b";
  if (run.executing === node.id) return "#3fb950";
  return node.data.color ?? (node.data.mode === "active" ? "#4a4f5a" : "#2a2d33");
}

const levelAt = (zoom: number): ZoomLevelName => (zoom < TINY_ZOOM ? "tiny" : zoom < FAR_ZOOM ? "far" : "near");

/**
 * Marks the canvas with how far it is zoomed out (data-zoom "far" below FAR_ZOOM, "tiny" below
 * TINY_ZOOM), so that CSS can leave out what is too small to see: the background dots (hundreds of
 * thousands of them when zoomed out) and, when tiny, the text of nodes. A class on one element
 * costs one style pass; re-rendering every node would cost much more.
 *
 * Less detail is shown at once; more detail only once the zoom has rested (zoomDetail.delayMs), so
 * that a wheel gesture crossing a threshold back and forth redraws every node on screen once, at
 * its end, not at each crossing (measured zooming a 300-node graph in the fit view: 3% of frames
 * over 25 ms instead of 17%; docs/benchmarks.md). The light version has the same sizes, so nothing
 * moves when it switches.
 */
function ZoomLevel({ target }: { target: RefObject<HTMLDivElement | null> }) {
  const store = useStoreApi();
  useEffect(() => {
    let zoom = store.getState().transform[2];
    let shown = levelAt(zoom);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const show = (level: ZoomLevelName) => {
      shown = level;
      target.current?.setAttribute("data-zoom", level);
      zoomStore.set({ level });
    };
    show(shown);
    const unsubscribe = store.subscribe((s) => {
      if (s.transform[2] === zoom) return; // panning changes nothing here
      zoom = s.transform[2];
      const level = levelAt(zoom);
      clearTimeout(timer); // still moving: no more detail yet
      if (level === shown) return;
      if (ZOOM_LEVELS.indexOf(level) < ZOOM_LEVELS.indexOf(shown) || zoomDetail.delayMs <= 0) show(level);
      else timer = setTimeout(() => show(levelAt(zoom)), zoomDetail.delayMs);
    });
    return () => {
      unsubscribe();
      clearTimeout(timer);
    };
  }, [store, target]);
  return null;
}

/** Mouse down on a connected input picks its wire up (before React Flow starts a new wire). */
function WirePickup() {
  const store = useStoreApi();
  useEffect(() => {
    const onDown = (event: MouseEvent) => {
      if (event.button !== 0 || event.ctrlKey || event.shiftKey || event.metaKey) return;
      const handle = (event.target as Element).closest?.(".react-flow__handle.target");
      const flow = store.getState();
      if (!(handle instanceof HTMLElement) || !flow.domNode?.contains(handle)) return;
      if (pickUpWire(event, handle, store)) {
        event.stopPropagation();
        event.preventDefault();
      }
    };
    // On the document, capturing: it runs before React's own listeners see the event.
    document.addEventListener("mousedown", onDown, true);
    return () => document.removeEventListener("mousedown", onDown, true);
  }, [store]);
  return null;
}

export function Canvas({ onReady }: { onReady: () => void }) {
  const nodes = useStore(graphStore, (s) => s.nodes);
  const edges = useStore(graphStore, (s) => s.edges);
  // Off-screen nodes are not drawn, once every node has been measured (wires need socket positions).
  // (Measured: culling at every zoom beats turning it off when zoomed out, where crossing the
  // threshold would mount or unmount hundreds of nodes in one frame.)
  const measured = useStore(graphStore, (s) => s.nodes.every((n) => n.measured?.width !== undefined));
  const wrapper = useRef<HTMLDivElement>(null);
  const minimap = useStore(uiStore, (s) => s.minimap);
  const showMinimap = minimap === "on" || (minimap === "auto" && nodes.length <= MINIMAP_AUTO_LIMIT);

  const onDoubleClick = (event: ReactMouseEvent) => {
    if (!(event.target as Element).classList.contains("react-flow__pane")) return;
    const screen = { x: event.clientX, y: event.clientY };
    openSearch({ screen, flow: flowPosition(screen) });
  };

  const onDragOver = (event: DragEvent) => {
    event.preventDefault();
    const types = event.dataTransfer.types;
    event.dataTransfer.dropEffect = types.includes(NODE_DRAG_MIME) || types.includes(COMPONENT_DRAG_MIME) ? "copy" : "move";
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    const at = flowPosition({ x: event.clientX, y: event.clientY });
    const type = event.dataTransfer.getData(NODE_DRAG_MIME);
    if (type) {
      addNode(type, at);
      return;
    }
    const component = event.dataTransfer.getData(COMPONENT_DRAG_MIME);
    if (component) {
      void insertComponent(component, at);
      return;
    }
    const file = event.dataTransfer.files?.[0];
    if (file) void openFile(file);
  };

  const onInit = useCallback(
    (instance: Parameters<typeof setFlowInstance>[0]) => {
      setFlowInstance(instance);
      onReady();
    },
    [onReady],
  );

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
      <ReactFlow<EditorNode, GraphEdge>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onInit={onInit}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={connect}
        isValidConnection={isValidConnection}
        onConnectEnd={endNewWire}
        connectionMode={ConnectionMode.Strict}
        connectionLineComponent={ConnectionLine}
        onlyRenderVisibleElements={measured}
        onNodeDragStart={(_, __, dragged) => startDrag(dragged)}
        onSelectionDragStart={(_, dragged) => startDrag(dragged)}
        onMoveEnd={(_, viewport) => setViewport(viewport)}
        onEdgeDoubleClick={(event, edge) => addRerouteOnWire(edge.id, flowPosition({ x: event.clientX, y: event.clientY }))}
        onNodeContextMenu={(event, node) => {
          event.preventDefault();
          const row = (event.target as Element).closest?.(".widget-row")?.getAttribute("data-testid");
          const input = row?.startsWith("input-") ? row.slice(6) : undefined;
          openContextMenu({ screen: { x: event.clientX, y: event.clientY }, nodeId: node.id, input });
        }}
        onEdgeContextMenu={(event, edge) => {
          event.preventDefault();
          openContextMenu({ screen: { x: event.clientX, y: event.clientY }, edgeId: edge.id });
        }}
        onPaneContextMenu={(event) => {
          event.preventDefault();
          openContextMenu({ screen: { x: event.clientX, y: event.clientY } });
        }}
        deleteKeyCode={null /* Delete is a shortcut of ours: one undo step, panels kept */}
        selectionKeyCode={["Shift", "Control"]}
        multiSelectionKeyCode={["Shift", "Control", "Meta"]}
        selectionMode={SelectionMode.Partial}
        zoomOnDoubleClick={false}
        minZoom={0.05}
        maxZoom={4}
        colorMode="dark"
        attributionPosition="bottom-left"
        fitView={false}
      >
        <Background variant={BackgroundVariant.Dots} gap={20} size={1} color="#3a3d44" />
        {showMinimap && (
          <MiniMap<EditorNode> pannable zoomable style={{ width: 180, height: 120 }} nodeColor={miniMapColor} maskColor="rgba(20,21,24,0.7)" data-testid="minimap" />
        )}
        <Controls showInteractive={false} position="bottom-left" style={{ bottom: 24 }}>
          <ControlButton onClick={() => toggleMinimap(showMinimap)} title={showMinimap ? "Hide the mini map" : "Show the mini map"} data-testid="minimap-toggle">
            ▦
          </ControlButton>
        </Controls>
        <WirePickup />
        <ZoomLevel target={wrapper} />
      </ReactFlow>
    </div>
  );
}
