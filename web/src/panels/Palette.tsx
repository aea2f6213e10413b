// The node library on the left: categories as folders, saved components, a filter (the same
// fuzzy ranking as the search box), drag or click to add a node. It folds away to give the canvas room.
import { useEffect, useMemo, useState, type DragEvent } from "react";
import { catalogStore, categoryTree, displayName, type CategoryTree } from "../catalog";
import { getFlowInstance } from "../editor/flow";
import { addNode } from "../editor/graphStore";
import { insertComponent } from "../editor/subgraphs";
import { togglePalette } from "../editor/uiState";
import { componentsStore, rememberChoice, searchEntries } from "../search";
import { useStore } from "../store";
import type { NodeDecl } from "../types";
import { refreshComponents } from "./NodeSearch";

export const NODE_DRAG_MIME = "application/x-latentgraph-node";
export const COMPONENT_DRAG_MIME = "application/x-latentgraph-component";

function centerOfCanvas(): { x: number; y: number } {
  const flow = getFlowInstance();
  const pane = document.querySelector(".react-flow")?.getBoundingClientRect();
  return pane && flow ? flow.screenToFlowPosition({ x: pane.left + pane.width / 2, y: pane.top + pane.height / 3 }) : { x: 0, y: 0 };
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
      onClick={() => {
        rememberChoice(decl.name);
        addNode(decl.name, centerOfCanvas());
      }}
      title={decl.description}
      data-testid={`palette-item-${decl.name}`}
    >
      {displayName(decl)}
    </div>
  );
}

function ComponentItem({ name }: { name: string }) {
  return (
    <div
      className="palette-item component"
      draggable
      onDragStart={(event) => {
        event.dataTransfer.setData(COMPONENT_DRAG_MIME, name);
        event.dataTransfer.effectAllowed = "copy";
      }}
      onClick={() => {
        rememberChoice(`component:${name}`);
        void insertComponent(name, centerOfCanvas());
      }}
      title="A saved component: click or drag to add it"
      data-testid={`palette-component-${name}`}
    >
      {name}
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
  const components = useStore(componentsStore, (s) => s.names);
  const [filter, setFilter] = useState("");
  const [componentsOpen, setComponentsOpen] = useState(true);
  const tree = useMemo(() => (catalog ? categoryTree(catalog) : null), [catalog]);
  const matches = useMemo(() => (catalog && filter.trim() ? searchEntries(catalog, filter, undefined, components) : null), [catalog, filter, components]);
  useEffect(() => {
    void refreshComponents();
    const refresh = () => void refreshComponents();
    window.addEventListener("latentgraph:components", refresh);
    return () => window.removeEventListener("latentgraph:components", refresh);
  }, []);
  if (!catalog || !tree) return null;
  return (
    <aside className="palette" data-testid="palette">
      <div className="palette-head">
        <input className="palette-filter" placeholder="Filter nodes…" value={filter} onChange={(e) => setFilter(e.target.value)} data-testid="palette-filter" />
        <button type="button" className="icon small collapse" title="Hide the node library" onClick={togglePalette} data-testid="palette-collapse">
          «
        </button>
      </div>
      <div className="palette-list">
        {matches
          ? matches.map((entry) =>
              entry.kind === "node" ? <PaletteItem key={entry.decl.name} decl={entry.decl} /> : <ComponentItem key={`c:${entry.name}`} name={entry.name} />,
            )
          : [
              components.length > 0 && (
                <div className="palette-folder" key="components" data-testid="palette-components">
                  <div className="palette-folder-name" onClick={() => setComponentsOpen(!componentsOpen)}>
                    <span className="caret">{componentsOpen ? "▾" : "▸"}</span>
                    components
                  </div>
                  {componentsOpen && (
                    <div className="palette-folder-items">
                      {components.map((name) => (
                        <ComponentItem key={name} name={name} />
                      ))}
                    </div>
                  )}
                </div>
              ),
              ...tree.children.map((child) => <Folder key={child.path} tree={child} depth={1} />),
              ...tree.nodes.map((decl) => <PaletteItem key={decl.name} decl={decl} />),
            ]}
      </div>
    </aside>
  );
}
