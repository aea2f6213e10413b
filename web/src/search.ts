// Node search: fuzzy (letters in order, "ksmplr" finds KSampler) and ranked: an exact name first,
// then by match quality nudged towards common nodes and the user's recent choices (remembered in
// localStorage). Matching is fuzzysort's (a small, well-kept library that scores subsequence
// matches the way code editors do: word starts and runs of letters score higher); we only add the
// ranking that knows about nodes.
import fuzzysort from "fuzzysort";
import { displayName, matchesFilter, type SearchFilter } from "./catalog";
import { createStore } from "./store";
import type { Catalog, NodeDecl } from "./types";

/** A search result: a node type, or a saved component (a subgraph from the library). */
export type SearchEntry = { kind: "node"; decl: NodeDecl } | { kind: "component"; name: string };

/** The nodes most graphs are made of, most common first (a small boost in the ranking). */
const COMMON = [
  "KSampler",
  "CheckpointLoaderSimple",
  "CLIPTextEncode",
  "VAEDecode",
  "EmptyLatentImage",
  "SaveImage",
  "PreviewImage",
  "LoadImage",
  "VAEEncode",
  "LoraLoader",
  "KSamplerAdvanced",
  "ControlNetApplyAdvanced",
  "ControlNetLoader",
  "VAELoader",
  "ImageScale",
  "LatentUpscale",
  "CLIPSetLastLayer",
  "ConditioningCombine",
];

const RECENT_KEY = "latentgraph.recentNodes";
const RECENT_MAX = 20;

export const componentsStore = createStore<{ names: string[] }>({ names: [] });

export function recentChoices(): string[] {
  try {
    const saved: unknown = JSON.parse(localStorage.getItem(RECENT_KEY) ?? "[]");
    return Array.isArray(saved) ? saved.filter((s): s is string => typeof s === "string") : [];
  } catch {
    return [];
  }
}

/** Remember a choice (a node type, or "component:NAME"): it ranks higher next time. */
export function rememberChoice(key: string): void {
  const recent = [key, ...recentChoices().filter((k) => k !== key)].slice(0, RECENT_MAX);
  localStorage.setItem(RECENT_KEY, JSON.stringify(recent));
}

export function entryKey(entry: SearchEntry): string {
  return entry.kind === "node" ? entry.decl.name : `component:${entry.name}`;
}

export function entryTitle(entry: SearchEntry): string {
  return entry.kind === "node" ? displayName(entry.decl) : entry.name;
}

function bonus(key: string, recent: string[]): number {
  const common = COMMON.indexOf(key);
  const recency = recent.indexOf(key);
  return (common >= 0 ? 0.08 - common * 0.002 : 0) + (recency >= 0 ? 0.12 - recency * 0.005 : 0);
}

const THRESHOLD = 0.25;

/** Search nodes (and components, when no type filter applies); best first. */
export function searchEntries(catalog: Catalog, query: string, filter?: SearchFilter, components: string[] = []): SearchEntry[] {
  const q = query.trim();
  const recent = recentChoices();
  const entries: SearchEntry[] = Object.values(catalog.nodes)
    .filter((decl) => matchesFilter(decl, filter))
    .map((decl) => ({ kind: "node" as const, decl }));
  if (!filter?.inputType && !filter?.outputType) for (const name of components) entries.push({ kind: "component", name });

  if (!q) {
    // Nothing typed: recent choices, then common nodes, then the rest by name.
    const rank = (e: SearchEntry) => {
      const key = entryKey(e);
      const r = recent.indexOf(key);
      const c = COMMON.indexOf(key);
      return r >= 0 ? r : c >= 0 ? RECENT_MAX + c : 1000;
    };
    return entries.sort((a, b) => rank(a) - rank(b) || entryTitle(a).localeCompare(entryTitle(b)));
  }

  const lower = q.toLowerCase();
  const results = fuzzysort.go(q, entries, {
    keys: [(e) => entryTitle(e), (e) => (e.kind === "node" ? e.decl.name : e.name), (e) => (e.kind === "node" ? e.decl.category ?? "" : "components")],
    threshold: THRESHOLD,
    limit: 0,
  });
  const scored = results.map((r) => {
    const entry = r.obj;
    const key = entryKey(entry);
    const names = [entryTitle(entry).toLowerCase(), (entry.kind === "node" ? entry.decl.name : entry.name).toLowerCase()];
    // The category alone (third key) matches weakly: a name match always ranks above it.
    const nameScore = Math.max(r[0]?.score ?? 0, r[1]?.score ?? 0);
    const score = (nameScore > 0 ? nameScore : r.score * 0.5) + (names.includes(lower) ? 1 : 0) + bonus(key, recent);
    return { entry, score, length: entryTitle(entry).length };
  });
  scored.sort((a, b) => b.score - a.score || a.length - b.length || entryTitle(a.entry).localeCompare(entryTitle(b.entry)));
  return scored.map((s) => s.entry);
}
