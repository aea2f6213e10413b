// The node library on the left: categories as folders, a filter, drag or click to add a node.
import { useMemo, useState, type DragEvent } from "react";
import { catalogStore, categoryTree, displayName, searchNodes, type CategoryTree } from "../catalog";
import { addNode } from "../editor/graphStore";
import { getFlowInstance } from "../editor/flow";
import { useStore } from "../store";
import type { NodeDecl } from "../types";

export const NODE_DRAG_MIME = "application/x-latentgraph-node";

function addAtCenter(type: string): void {
  const flow = getFlowInstance();
  const pane = document.querySelector(".react-flow")?.getBoundingClientRect();
  const center = pane && flow ? flow.screenToFlowPosition({ x: pane.left + pane.width / 2, y: pane.top + pane.height / 3 }) : { x: 0, y: 0 };
  addNode(type, center);
}

function PaletteItem({ decl }: { decl: NodeDecl }) {
  const onDragStart = (event: DragEvent) => {
    event.dataTransfer.setData(NODE_DRAG_MIME, decl.name);
    event.dataTransfer.effectAllowed = "copy";
  };
  return (
    <div
      className="palette-item"
      draggable
      onDragStart={onDragStart}
      onClick={() => addAtCenter(decl.name)}
      title={decl.description}
      data-testid={`palette-item-${decl.name}`}
    >
      {displayName(decl)}
    </div>
  );
}

function Folder({ tree, depth }: { tree: CategoryTree; depth: number }) {
  const [open, setOpen] = useState(depth <= 1);
  return (
    <div className="palette-folder" data-testid={`palette-category-${tree.path}`}>
      <div className="palette-folder-name" onClick={() => setOpen(!open)}>
        <span className="caret">{open ? "▾" : "▸"}</span>
        {tree.name}
      </div>
      {open && (
        <div className="palette-folder-items">
          {tree.children.map((child) => (
            <Folder key={child.path} tree={child} depth={depth + 1} />
          ))}
          {tree.nodes.map((decl) => (
            <PaletteItem key={decl.name} decl={decl} />
          ))}
        </div>
      )}
    </div>
  );
}

export function Palette() {
  const catalog = useStore(catalogStore, (s) => s.catalog);
  const [filter, setFilter] = useState("");
  const tree = useMemo(() => (catalog ? categoryTree(catalog) : null), [catalog]);
  const matches = useMemo(() => (catalog && filter.trim() ? searchNodes(catalog, filter) : null), [catalog, filter]);
  if (!catalog || !tree) return null;
  return (
    <aside className="palette" data-testid="palette">
      <input
        className="palette-filter"
        placeholder="Filter nodes…"
        value={filter}
        onChange={(e) => setFilter(e.target.value)}
        data-testid="palette-filter"
      />
      <div className="palette-list">
        {matches
          ? matches.map((decl) => <PaletteItem key={decl.name} decl={decl} />)
          : [
              ...tree.children.map((child) => <Folder key={child.path} tree={child} depth={1} />),
              ...tree.nodes.map((decl) => <PaletteItem key={decl.name} decl={decl} />),
            ]}
      </div>
    </aside>
  );
}
