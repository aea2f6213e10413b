// Editor chrome state: notifications, the node search box, which side panel is open.
import type { XYPosition } from "@xyflow/react";
import type { SearchFilter } from "../catalog";
import { createStore } from "../store";

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
  /** The node right-clicked, or none for the canvas. */
  nodeId?: string;
}

export type SidePanel = "queue" | "library" | null;

interface UiState {
  toasts: Toast[];
  search: SearchBox | null;
  panel: SidePanel;
  paletteOpen: boolean;
  /** An image shown full size over the editor. */
  lightbox: string | null;
  contextMenu: ContextMenu | null;
  /** The node whose title is being edited. */
  renaming: string | null;
  /** How many jobs one press of Run queues. */
  batchCount: number;
}

export const uiStore = createStore<UiState>({
  toasts: [],
  search: null,
  panel: "queue",
  paletteOpen: true,
  lightbox: null,
  contextMenu: null,
  renaming: null,
  batchCount: 1,
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

export function togglePanel(panel: Exclude<SidePanel, null>): void {
  uiStore.set((s) => ({ panel: s.panel === panel ? null : panel }));
}

export function showLightbox(url: string | null): void {
  uiStore.set({ lightbox: url });
}

export function openContextMenu(menu: ContextMenu | null): void {
  uiStore.set({ contextMenu: menu });
}

export function startRenaming(nodeId: string | null): void {
  uiStore.set({ renaming: nodeId });
}
