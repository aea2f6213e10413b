// Keyboard shortcuts of the editor (ComfyUI's where they exist).
import { refreshChoices } from "../catalog";
import { fitView, flowPosition, pointer } from "./flow";
import { copySelection, paste } from "./clipboard";
import { deleteSelected, graphStore, redo, selectAll, toggleModeOfSelected, undo } from "./graphStore";
import { queueRuns } from "./run";
import { closeSearch, openSearch, toast, uiStore } from "./uiState";
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

export function handleKeyDown(event: KeyboardEvent): void {
  const ctrl = event.ctrlKey || event.metaKey;
  const key = event.key.toLowerCase();

  // Run works everywhere, also while typing a prompt.
  if (ctrl && key === "enter") {
    event.preventDefault();
    void queueRuns(uiStore.get().batchCount);
    return;
  }
  if (ctrl && key === "s") {
    event.preventDefault();
    void saveToLibrary(graphStore.get().name || "untitled");
    return;
  }
  if (event.key === "Escape" && uiStore.get().search) {
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
  } else if (!ctrl && (event.key === "/" || (event.key === " " && event.shiftKey))) {
    event.preventDefault();
    const screen = pointer.screen ?? canvasCenter();
    openSearch({ screen, flow: flowPosition(screen) });
  } else if (!ctrl && event.key === ".") {
    fitView();
  } else if (!ctrl && key === "r") {
    // As in ComfyUI: re-read the checkpoint and input-image lists.
    void refreshChoices().then(() => toast("info", "Model and image lists refreshed"));
  }
}
