// Right-click menus: on a node (rename, mute, bypass, clone, delete) and on the canvas.
import { copySelection, paste } from "../editor/clipboard";
import { fitView, flowPosition } from "../editor/flow";
import { cloneNodes, deleteNodes, graphStore, setModes } from "../editor/graphStore";
import { openContextMenu, openSearch, startRenaming, uiStore } from "../editor/uiState";
import { useStore } from "../store";
import type { NodeMode } from "../types";

interface Item {
  label: string;
  shortcut?: string;
  action: () => void;
  testId: string;
}

export function ContextMenu() {
  const menu = useStore(uiStore, (s) => s.contextMenu);
  if (!menu) return null;
  const close = () => openContextMenu(null);
  const { nodes } = graphStore.get();
  const node = menu.nodeId ? nodes.find((n) => n.id === menu.nodeId) : undefined;

  let items: (Item | null)[];
  if (node) {
    // Acting on a node of a selection acts on the whole selection, as in ComfyUI.
    const targets = node.selected ? nodes.filter((n) => n.selected).map((n) => n.id) : [node.id];
    const toggle = (mode: NodeMode) => setModes(targets, node.data.mode === mode ? "active" : mode);
    items = [
      { label: "Rename", action: () => startRenaming(node.id), testId: "menu-rename" },
      null,
      { label: node.data.mode === "muted" ? "Unmute" : "Mute", shortcut: "Ctrl+M", action: () => toggle("muted"), testId: "menu-mute" },
      { label: node.data.mode === "bypassed" ? "Remove bypass" : "Bypass", shortcut: "Ctrl+B", action: () => toggle("bypassed"), testId: "menu-bypass" },
      null,
      { label: "Clone", action: () => cloneNodes(targets), testId: "menu-clone" },
      { label: "Copy", shortcut: "Ctrl+C", action: () => copySelection(), testId: "menu-copy" },
      { label: "Delete", shortcut: "Del", action: () => deleteNodes(targets), testId: "menu-delete" },
    ];
  } else {
    items = [
      {
        label: "Add node…",
        shortcut: "dbl-click",
        action: () => openSearch({ screen: menu.screen, flow: flowPosition(menu.screen) }),
        testId: "menu-add-node",
      },
      { label: "Paste", shortcut: "Ctrl+V", action: () => paste(flowPosition(menu.screen), false), testId: "menu-paste" },
      { label: "Fit view", shortcut: ".", action: fitView, testId: "menu-fit" },
    ];
  }

  return (
    <>
      <div className="search-backdrop" onMouseDown={close} onContextMenu={(e) => { e.preventDefault(); close(); }} />
      <div className="context-menu" style={{ left: menu.screen.x, top: menu.screen.y }} data-testid="context-menu">
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
      </div>
    </>
  );
}
