// Keyboard shortcuts of the editor (ComfyUI's where they exist).
import { refreshChoices } from "../catalog";
import { isGraphNode } from "../graphModel";
import { arrange } from "./arrange";
import { copySelection, paste } from "./clipboard";
import { fitView, flowPosition, pointer } from "./flow";
import {
  deleteSelected,
  graphStore,
  redo,
  selectAll,
  selectedIds,
  setCollapsed,
  setPinned,
  toggleModeOfSelected,
  undo,
} from "./graphStore";
import { addGroup } from "./groups";
import { queueRuns } from "./run";
import { closeSubgraphs, makeSubgraph } from "./subgraphs";
import { closeSearch, closeViewer, openSearch, stepViewer, toast, uiStore } from "./uiState";
import { saveToLibrary } from "./workflowIO";

function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el) return false;
  const tag = el.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
}

function canvasCenter() {
  const rect = document.querySelector(".react-flow")?.getBoundingClientRect();
  return rect ? { x: rect.left + rect.width / 2, y: rect.top + rect.height / 3 } : { x: 400, y: 300 };
}

function selectedGraphNodes() {
  return graphStore.get().nodes.filter((n) => n.selected && isGraphNode(n));
}

export function handleKeyDown(event: KeyboardEvent): void {
  const ctrl = event.ctrlKey || event.metaKey;
  const key = event.key.toLowerCase();
  const ui = uiStore.get();

  // The image viewer takes the arrows and Escape while it is open.
  if (ui.viewer) {
    if (event.key === "Escape") closeViewer();
    else if (event.key === "ArrowLeft") stepViewer(-1);
    else if (event.key === "ArrowRight") stepViewer(1);
    else return;
    event.preventDefault();
    return;
  }
  if (ui.dialog) {
    if (event.key === "Escape") ui.dialog.resolve(null);
    return;
  }

  // Run works everywhere, also while typing a prompt.
  if (ctrl && key === "enter") {
    event.preventDefault();
    void queueRuns(ui.batchCount);
    return;
  }
  if (ctrl && key === "s") {
    event.preventDefault();
    void saveToLibrary(graphStore.get().name || "untitled");
    return;
  }
  if (event.key === "Escape" && ui.search) {
    closeSearch();
    return;
  }
  if (isTyping(event.target)) return;

  if (ctrl && key === "z" && !event.shiftKey) {
    event.preventDefault();
    undo();
  } else if (ctrl && ((key === "z" && event.shiftKey) || key === "y")) {
    event.preventDefault();
    redo();
  } else if (ctrl && key === "c") {
    if (copySelection()) event.preventDefault();
  } else if (ctrl && key === "x") {
    if (copySelection()) {
      event.preventDefault();
      deleteSelected();
    }
  } else if (ctrl && key === "v") {
    event.preventDefault();
    const at = pointer.screen ? flowPosition(pointer.screen) : null;
    if (!paste(at, event.shiftKey)) toast("info", "Nothing to paste");
  } else if (ctrl && key === "a") {
    event.preventDefault();
    selectAll();
  } else if (ctrl && key === "m") {
    event.preventDefault();
    toggleModeOfSelected("muted");
  } else if (ctrl && key === "b") {
    event.preventDefault();
    toggleModeOfSelected("bypassed");
  } else if (ctrl && key === "g") {
    event.preventDefault();
    const ids = selectedIds();
    if (ids.length) addGroup(ids);
  } else if (ctrl && event.shiftKey && key === "e") {
    event.preventDefault();
    makeSubgraph(selectedIds("graph"));
  } else if (event.key === "Delete" || event.key === "Backspace") {
    event.preventDefault();
    deleteSelected();
  } else if (event.altKey && key === "c") {
    event.preventDefault();
    const nodes = selectedGraphNodes();
    if (nodes.length) setCollapsed(nodes.map((n) => n.id), !nodes.every((n) => isGraphNode(n) && n.data.collapsed));
  } else if (!ctrl && !event.altKey && key === "p") {
    const nodes = selectedGraphNodes();
    if (nodes.length) setPinned(nodes.map((n) => n.id), !nodes.every((n) => isGraphNode(n) && n.data.pinned));
  } else if (!ctrl && !event.altKey && key === "l" && event.shiftKey) {
    // Shift+L: arrange the selection (or everything) as layers, left to right.
    void arrange(selectedIds());
  } else if (!ctrl && (event.key === "/" || (event.key === " " && event.shiftKey))) {
    event.preventDefault();
    const screen = pointer.screen ?? canvasCenter();
    openSearch({ screen, flow: flowPosition(screen) });
  } else if (!ctrl && event.key === ".") {
    fitView();
  } else if (event.key === "Escape" && graphStore.get().stack.length) {
    closeSubgraphs(graphStore.get().stack.length - 1);
  } else if (!ctrl && key === "r") {
    // As in ComfyUI: re-read the checkpoint and input-image lists.
    void refreshChoices().then(() => toast("info", "Model and image lists refreshed"));
  }
}
