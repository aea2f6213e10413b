// Editor chrome state: notifications, the node search box, which side panel is open.
import type { XYPosition } from "@xyflow/react";
import type { SearchFilter } from "../catalog";
import { createStore } from "../store";
import { keepRightEndInView } from "./flow";

export type ToastKind = "info" | "error" | "success";

export interface Toast {
  id: number;
  kind: ToastKind;
  text: string;
}

/** A connection dropped on empty canvas, to be linked to the node the user picks. */
export interface DanglingConnection {
  nodeId: string;
  handleId: string;
  handleType: "source" | "target";
  type: string;
}

export interface SearchBox {
  /** Where the box appears, in screen pixels. */
  screen: XYPosition;
  /** Where the chosen node goes, in flow coordinates. */
  flow: XYPosition;
  filter?: SearchFilter;
  dangling?: DanglingConnection;
}

export interface ContextMenu {
  screen: XYPosition;
  /** The node or wire right-clicked, or neither for the canvas. */
  nodeId?: string;
  /** The node's widget right-clicked (its input name). */
  input?: string;
  edgeId?: string;
}

export type SidePanel = "queue" | "library" | "sweep" | null;

export interface Dialog {
  message: string;
  /** With a text field (its starting text): the answer is the text, or null when cancelled. */
  input?: string;
  choices: { label: string; value: string; primary?: boolean }[];
  resolve: (value: string | null) => void;
}

const MINIMAP_KEY = "latentgraph.minimap";
/** Above this many nodes the mini map is hidden unless the user asks for it (it redraws while panning). */
export const MINIMAP_AUTO_LIMIT = 200;
const PALETTE_KEY = "latentgraph.palette";

/** Whether the user has opened or closed the right-hand panel since the page opened. */
let panelTouched = false;

interface UiState {
  toasts: Toast[];
  search: SearchBox | null;
  panel: SidePanel;
  paletteOpen: boolean;
  /** Images shown full size over the editor, with the one shown (previous/next move through them). */
  viewer: { urls: string[]; index: number } | null;
  /** A question over the editor (replace unsaved changes?), answered by one of its choices. */
  dialog: Dialog | null;
  contextMenu: ContextMenu | null;
  /** The node whose title is being edited. */
  renaming: string | null;
  /** How many jobs one press of Run queues. */
  batchCount: number;
  /** The mini map: "auto" shows it for graphs small enough that redrawing it on every frame is cheap. */
  minimap: "auto" | "on" | "off";
}

export const uiStore = createStore<UiState>({
  toasts: [],
  search: null,
  // The right-hand panel starts closed: the canvas gets the room.
  panel: null,
  paletteOpen: localStorage.getItem(PALETTE_KEY) !== "closed",
  viewer: null,
  dialog: null,
  contextMenu: null,
  renaming: null,
  batchCount: 1,
  minimap: (localStorage.getItem(MINIMAP_KEY) as "on" | "off" | null) ?? "auto",
});

let nextToastId = 1;

export function toast(kind: ToastKind, text: string, ms = kind === "error" ? 8000 : 3500): void {
  const id = nextToastId++;
  uiStore.set((s) => ({ toasts: [...s.toasts.slice(-4), { id, kind, text }] }));
  window.setTimeout(() => dismissToast(id), ms);
}

export function dismissToast(id: number): void {
  uiStore.set((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) }));
}

export function openSearch(search: SearchBox): void {
  uiStore.set({ search });
}

export function closeSearch(): void {
  uiStore.set({ search: null });
}

export function setPanel(panel: SidePanel): void {
  panelTouched = true;
  uiStore.set({ panel });
}

export function togglePanel(panel: Exclude<SidePanel, null>): void {
  setPanel(uiStore.get().panel === panel ? null : panel);
}

/** Open the queue panel when a job is queued, unless the user has chosen a panel (or none). The
 * graph slides left as far as needed for its output end to stay in view. */
export function revealQueue(): void {
  if (uiStore.get().panel === null && !panelTouched) keepRightEndInView(() => uiStore.set({ panel: "queue" }));
}

export function togglePalette(): void {
  const open = !uiStore.get().paletteOpen;
  uiStore.set({ paletteOpen: open });
  localStorage.setItem(PALETTE_KEY, open ? "open" : "closed");
}

export function toggleMinimap(shown: boolean): void {
  const minimap = shown ? "off" : "on";
  uiStore.set({ minimap });
  localStorage.setItem(MINIMAP_KEY, minimap);
}

export function openViewer(urls: string[], index: number): void {
  if (urls.length) uiStore.set({ viewer: { urls, index: Math.max(0, Math.min(index, urls.length - 1)) } });
}

export function closeViewer(): void {
  uiStore.set({ viewer: null });
}

export function stepViewer(delta: number): void {
  const viewer = uiStore.get().viewer;
  if (!viewer) return;
  const index = Math.max(0, Math.min(viewer.index + delta, viewer.urls.length - 1));
  uiStore.set({ viewer: { ...viewer, index } });
}

/** Ask the user; resolves with the chosen value (or the text typed), or null when dismissed. */
export function ask(message: string, choices: Dialog["choices"], input?: string): Promise<string | null> {
  return new Promise((resolve) => {
    uiStore.get().dialog?.resolve(null);
    uiStore.set({
      dialog: {
        message,
        input,
        choices,
        resolve: (value) => {
          uiStore.set({ dialog: null });
          resolve(value);
        },
      },
    });
  });
}

export function openContextMenu(menu: ContextMenu | null): void {
  uiStore.set({ contextMenu: menu });
}

export function startRenaming(nodeId: string | null): void {
  uiStore.set({ renaming: nodeId });
}

/** How far the canvas is zoomed out ("near", "far", "tiny"), set by the canvas when it crosses a
 * threshold: nodes read it here instead of each following every zoom step of React Flow's store. */
export const ZOOM_LEVELS = ["tiny", "far", "near"] as const; // from the least detail to the most
export type ZoomLevelName = (typeof ZOOM_LEVELS)[number];
export const zoomStore = createStore<{ level: ZoomLevelName }>({ level: "near" });

/** How long the zoom must rest before nodes draw more detail (0: at once). A setting, not a
 * constant, so that bench/bench_editor_frames.py can compare the two through window.latentgraph. */
export const zoomDetail = { delayMs: 150 };
