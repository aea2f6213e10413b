// Right-click menus: on a node (rename, mute, bypass, colour, collapse, pin, subgraph, group,
// arrange, clone, delete), on a group, on a wire, and on the canvas.
import type { ReactNode } from "react";
import { arrange } from "../editor/arrange";
import { copySelection, paste } from "../editor/clipboard";
import { fitView, flowPosition } from "../editor/flow";
import { cloneNodes, deleteNodes, graphStore, nodesInFrame, removeEdge, setCollapsed, setColor, setModes, setPinned } from "../editor/graphStore";
import { addGroup } from "../editor/groups";
import { makeSubgraph, openSubgraph, saveComponent } from "../editor/subgraphs";
import { sweepInput } from "../editor/sweep";
import { ask, openContextMenu, openSearch, startRenaming, uiStore } from "../editor/uiState";
import { addReroute, addRerouteOnWire } from "../editor/wires";
import { type EditorNode, FRAME_COLORS, isFrame, isGraphNode } from "../graphModel";
import { useStore } from "../store";
import type { NodeMode } from "../types";

interface Item {
  label: string;
  shortcut?: string;
  action: () => void;
  testId: string;
}

/** Node colours (ComfyUI-like hues that keep white text readable); "none" restores the default. */
export const NODE_COLORS: Record<string, string> = {
  red: "#6e3434",
  brown: "#5e4a31",
  green: "#35593c",
  blue: "#34496e",
  pale_blue: "#3d5f6e",
  cyan: "#2f5f5c",
  purple: "#56396e",
  yellow: "#6b6131",
  black: "#222326",
};

function Swatches({ targets, frame, close }: { targets: string[]; frame: boolean; close: () => void }) {
  const colors = frame ? Object.fromEntries(FRAME_COLORS.map((c, i) => [`frame${i}`, c])) : NODE_COLORS;
  return (
    <div className="context-menu-swatches" data-testid="menu-colors">
      {Object.entries(colors).map(([name, color]) => (
        <span
          key={name}
          className="swatch"
          style={{ background: color }}
          title={name}
          data-testid={`menu-color-${name}`}
          onMouseDown={(e) => {
            e.preventDefault();
            close();
            setColor(targets, color);
          }}
        />
      ))}
      {!frame && (
        <span
          className="swatch none"
          title="default colour"
          data-testid="menu-color-none"
          onMouseDown={(e) => {
            e.preventDefault();
            close();
            setColor(targets, undefined);
          }}
        />
      )}
    </div>
  );
}

function nodeItems(node: EditorNode, nodes: EditorNode[]): (Item | null)[] {
  // Acting on a node of a selection acts on the whole selection, as in ComfyUI.
  const selection = node.selected ? nodes.filter((n) => n.selected) : [node];
  const targets = selection.map((n) => n.id);
  const graphTargets = selection.filter(isGraphNode).map((n) => n.id);
  if (isFrame(node)) {
    return [
      { label: "Rename group", action: () => startRenaming(node.id), testId: "menu-rename" },
      { label: "Arrange nodes inside", shortcut: "Shift+L", action: () => void arrange(nodesInFrame(node, nodes).map((n) => n.id)), testId: "menu-arrange" },
      { label: "Remove group", action: () => deleteNodes([node.id]), testId: "menu-delete" },
    ];
  }
  if (!isGraphNode(node)) {
    return node.deletable === false ? [] : [{ label: "Delete", shortcut: "Del", action: () => deleteNodes(targets), testId: "menu-delete" }];
  }
  const toggle = (mode: NodeMode) => setModes(graphTargets, node.data.mode === mode ? "active" : mode);
  const items: (Item | null)[] = [{ label: "Rename", action: () => startRenaming(node.id), testId: "menu-rename" }];
  if (node.data.subgraph) {
    items.push(
      { label: "Open subgraph", action: () => openSubgraph(node.id), testId: "menu-open-subgraph" },
      {
        label: "Save as component…",
        action: () =>
          void ask("Save this subgraph to the components library as:", [{ label: "Save", value: "save", primary: true }, { label: "Cancel", value: "cancel" }], node.data.title || "").then(
            (name) => name && void saveComponent(node.id, name),
          ),
        testId: "menu-save-component",
      },
    );
  }
  items.push(
    null,
    { label: node.data.mode === "muted" ? "Unmute" : "Mute", shortcut: "Ctrl+M", action: () => toggle("muted"), testId: "menu-mute" },
    { label: node.data.mode === "bypassed" ? "Remove bypass" : "Bypass", shortcut: "Ctrl+B", action: () => toggle("bypassed"), testId: "menu-bypass" },
    { label: node.data.collapsed ? "Expand" : "Collapse", shortcut: "Alt+C", action: () => setCollapsed(graphTargets, !node.data.collapsed), testId: "menu-collapse" },
    { label: node.data.pinned ? "Unpin" : "Pin", shortcut: "P", action: () => setPinned(graphTargets, !node.data.pinned), testId: "menu-pin" },
    null,
    { label: "Make subgraph", shortcut: "Ctrl+Shift+E", action: () => makeSubgraph(graphTargets), testId: "menu-make-subgraph" },
    { label: "Group", shortcut: "Ctrl+G", action: () => addGroup(targets), testId: "menu-group" },
  );
  if (targets.length > 1) items.push({ label: "Arrange selection", shortcut: "Shift+L", action: () => void arrange(targets), testId: "menu-arrange" });
  items.push(
    null,
    { label: "Clone", action: () => cloneNodes(graphTargets), testId: "menu-clone" },
    { label: "Copy", shortcut: "Ctrl+C", action: () => copySelection(), testId: "menu-copy" },
    { label: "Delete", shortcut: "Del", action: () => deleteNodes(targets), testId: "menu-delete" },
  );
  return items;
}

export function ContextMenu() {
  const menu = useStore(uiStore, (s) => s.contextMenu);
  if (!menu) return null;
  const close = () => openContextMenu(null);
  const { nodes } = graphStore.get();
  const node = menu.nodeId ? nodes.find((n) => n.id === menu.nodeId) : undefined;
  const at = flowPosition(menu.screen);

  let items: (Item | null)[];
  let extra: ReactNode = null;
  if (node) {
    items = nodeItems(node, nodes);
    // A widget right-clicked at the workflow's own level (sweeps name its nodes): sweep it.
    const input = menu.input;
    if (input && isGraphNode(node) && !node.data.subgraph && !graphStore.get().stack.length) {
      items.unshift({ label: `Sweep “${input}”…`, action: () => sweepInput(node.id, input), testId: "menu-sweep-input" }, null);
    }
    if (isGraphNode(node) || isFrame(node)) {
      const targets = node.selected ? nodes.filter((n) => n.selected && (isFrame(node) ? isFrame(n) : isGraphNode(n))).map((n) => n.id) : [node.id];
      extra = <Swatches targets={targets} frame={isFrame(node)} close={close} />;
    }
  } else if (menu.edgeId) {
    const wire = menu.edgeId;
    items = [
      { label: "Add reroute here", shortcut: "dbl-click", action: () => addRerouteOnWire(wire, at), testId: "menu-add-reroute" },
      { label: "Delete wire", action: () => removeEdge(wire), testId: "menu-delete-wire" },
    ];
  } else {
    items = [
      { label: "Add node…", shortcut: "dbl-click", action: () => openSearch({ screen: menu.screen, flow: at }), testId: "menu-add-node" },
      { label: "Add group", action: () => addGroup([], at), testId: "menu-add-group" },
      { label: "Add reroute", action: () => addReroute(at), testId: "menu-add-reroute" },
      { label: "Paste", shortcut: "Ctrl+V", action: () => paste(at, false), testId: "menu-paste" },
      null,
      { label: "Arrange all", shortcut: "Shift+L", action: () => void arrange([]), testId: "menu-arrange-all" },
      { label: "Fit view", shortcut: ".", action: fitView, testId: "menu-fit" },
    ];
  }

  return (
    <>
      <div className="search-backdrop" onMouseDown={close} onContextMenu={(e) => { e.preventDefault(); close(); }} />
      <div className="context-menu" style={{ left: menu.screen.x, top: Math.min(menu.screen.y, window.innerHeight - 420) }} data-testid="context-menu">
        {items.map((item, i) =>
          item ? (
            <div
              key={item.testId}
              className="context-menu-item"
              data-testid={item.testId}
              onMouseDown={(e) => {
                e.preventDefault();
                close();
                item.action();
              }}
            >
              {item.label}
              {item.shortcut && <span className="shortcut">{item.shortcut}</span>}
            </div>
          ) : (
            <div key={`sep${i}`} className="context-menu-separator" />
          ),
        )}
        {extra && <div className="context-menu-separator" />}
        {extra}
      </div>
    </>
  );
}
