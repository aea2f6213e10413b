// Workflow tabs: several graphs open at once, each with its own undo history and run results.
// The active tab lives in graphStore and runStore; the others wait here. All tabs are saved in
// localStorage (with the jobs their images came from), so a reload brings them back.
import { createStore } from "../store";
import type { Workflow } from "../types";
import { getFlowInstance } from "./flow";
import { emptyGraphState, graphStore, type GraphState } from "./graphStore";
import { currentResults, emptyResults, type GraphResults, restoreImages, runStore, setResults, setTabRouter } from "./runState";
import { rootWorkflow } from "./subgraphs";

export interface TabInfo {
  id: string;
  name: string;
  dirty: boolean;
}

interface TabsState {
  tabs: TabInfo[];
  active: string;
}

interface Stashed {
  graph: GraphState;
  results: GraphResults;
}

export const tabsStore = createStore<TabsState>({ tabs: [{ id: "t1", name: "untitled", dirty: false }], active: "t1" });
const stashed = new Map<string, Stashed>();

const TABS_KEY = "latentgraph.tabs";

export interface SavedTab {
  id: string;
  name: string;
  dirty: boolean;
  workflow: Workflow;
  imageJobs?: Record<string, string>;
}

function freshId(): string {
  const taken = new Set(tabsStore.get().tabs.map((t) => t.id));
  let i = 1;
  while (taken.has(`t${i}`)) i++;
  return `t${i}`;
}

/** Keep the tab bar's name and dirty mark of the active tab in step with the graph. */
graphStore.subscribe(() => {
  const { name, dirty } = graphStore.get();
  const { tabs, active } = tabsStore.get();
  const tab = tabs.find((t) => t.id === active);
  if (tab && (tab.name !== name || tab.dirty !== dirty)) {
    tabsStore.set({ tabs: tabs.map((t) => (t.id === active ? { ...t, name, dirty } : t)) });
  }
});

setTabRouter({
  active: () => tabsStore.get().active,
  apply(tabId, reduce) {
    const tab = stashed.get(tabId);
    if (!tab) return false;
    tab.results = reduce(tab.results);
    return true;
  },
});

function stashActive(): void {
  const flow = getFlowInstance();
  const graph = { ...graphStore.get() };
  if (flow && !graph.stack.length) graph.viewport = flow.getViewport();
  stashed.set(tabsStore.get().active, { graph, results: currentResults() });
}

function activate(id: string, graph: GraphState, results: GraphResults): void {
  tabsStore.set({ active: id });
  graphStore.set(graph);
  setResults(results);
  void restoreMissingImages();
  window.requestAnimationFrame(() => void getFlowInstance()?.setViewport(graph.viewport));
}

/** Show images of this tab's nodes that are known by job but not loaded yet (after a reload). */
async function restoreMissingImages(): Promise<void> {
  const { images, imageJobs } = runStore.get();
  const missing = Object.fromEntries(Object.entries(imageJobs).filter(([node]) => !images[node]));
  if (!Object.keys(missing).length) return;
  const tab = tabsStore.get().active;
  const found = await restoreImages(missing);
  if (tabsStore.get().active !== tab) return;
  const now = runStore.get().images;
  const add = Object.fromEntries(Object.entries(found).filter(([node]) => !now[node]));
  if (Object.keys(add).length) runStore.set({ images: { ...now, ...add } });
}

export function switchTab(id: string): void {
  if (id === tabsStore.get().active) return;
  const target = stashed.get(id);
  if (!target) return;
  stashActive();
  stashed.delete(id);
  activate(id, target.graph, target.results);
}

/** Open a new tab; `load` puts its workflow on the canvas once the tab is active. */
export function newTab(load: () => void): void {
  stashActive();
  const id = freshId();
  tabsStore.set((s) => ({ tabs: [...s.tabs, { id, name: "untitled", dirty: false }] }));
  activate(id, emptyGraphState(), emptyResults());
  load();
}

export function closeTab(id: string, openDefault: () => void): void {
  const { tabs, active } = tabsStore.get();
  const index = tabs.findIndex((t) => t.id === id);
  if (index < 0) return;
  if (tabs.length === 1) {
    openDefault();
    return;
  }
  const rest = tabs.filter((t) => t.id !== id);
  if (id === active) {
    const next = rest[Math.min(index, rest.length - 1)];
    const target = stashed.get(next.id)!;
    stashed.delete(next.id);
    tabsStore.set({ tabs: rest });
    activate(next.id, target.graph, target.results);
  } else {
    stashed.delete(id);
    tabsStore.set({ tabs: rest });
  }
}

/** Every tab as saved in localStorage, the active one from the live graph. */
export function savedTabs(activeWorkflow: Workflow): { active: string; tabs: SavedTab[] } {
  const { tabs, active } = tabsStore.get();
  return {
    active,
    tabs: tabs.map((t) => {
      if (t.id === active) return { ...t, workflow: activeWorkflow, imageJobs: runStore.get().imageJobs };
      const s = stashed.get(t.id)!;
      return { id: t.id, name: s.graph.name, dirty: s.graph.dirty, workflow: rootWorkflow(s.graph.viewport, s.graph), imageJobs: s.results.imageJobs };
    }),
  };
}

export function persistTabs(activeWorkflow: Workflow): void {
  localStorage.setItem(TABS_KEY, JSON.stringify(savedTabs(activeWorkflow)));
}

export function readSavedTabs(): { active: string; tabs: SavedTab[] } | null {
  try {
    const saved = JSON.parse(localStorage.getItem(TABS_KEY) ?? "null") as { active: string; tabs: SavedTab[] } | null;
    if (!saved || !Array.isArray(saved.tabs) || !saved.tabs.length) return null;
    return saved;
  } catch {
    return null;
  }
}

/** Rebuild the tabs saved before a reload: `open` loads a workflow into the active graph. */
export function restoreTabs(
  saved: { active: string; tabs: SavedTab[] },
  open: (tab: SavedTab) => boolean,
): void {
  const ids = saved.tabs.map((t) => t.id);
  const activeId = ids.includes(saved.active) ? saved.active : ids[0];
  tabsStore.set({ tabs: saved.tabs.map((t) => ({ id: t.id, name: t.name, dirty: !!t.dirty })), active: ids[0] });
  // Load each tab in turn as the active one, then stash it.
  for (const tab of saved.tabs) {
    tabsStore.set({ active: tab.id });
    graphStore.set(emptyGraphState());
    open(tab);
    setResults({ ...emptyResults(), imageJobs: tab.imageJobs ?? {} });
    if (tab.id !== activeId) {
      const graph = graphStore.get();
      stashed.set(tab.id, { graph: { ...graph, viewport: tab.workflow.ui?.viewport ?? graph.viewport }, results: currentResults() });
    }
  }
  const current = saved.tabs.find((t) => t.id === activeId)!;
  tabsStore.set({ active: activeId });
  stashed.delete(activeId);
  // The last loaded tab is in graphStore; if it is not the active one, bring the active one in.
  if (saved.tabs[saved.tabs.length - 1].id !== activeId) {
    graphStore.set(emptyGraphState());
    open(current);
    setResults({ ...emptyResults(), imageJobs: current.imageJobs ?? {} });
  }
  void restoreMissingImages();
}
