// The node catalog from the server, and everything derived from it: which inputs are sockets or
// widgets, the colour of each type, the dynamic choice lists (checkpoints, input images), search.
import { api } from "./api";
import { createStore } from "./store";
import type { Catalog, CheckpointDetails, InputDecl, NodeDecl } from "./types";

const DEFAULT_VALUE_TYPES = ["INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"];

interface CatalogState {
  catalog: Catalog | null;
  /** Lists named by `choices_from` ("checkpoints", "input_images"), refreshed from the server. */
  dynamicChoices: Record<string, string[]>;
  /** Native resolution and family of checkpoints, where the server knows them. */
  checkpointDetails: Record<string, CheckpointDetails>;
  loadError: string | null;
}

export const catalogStore = createStore<CatalogState>({ catalog: null, dynamicChoices: {}, checkpointDetails: {}, loadError: null });

export async function loadCatalog(): Promise<Catalog> {
  const catalog = await api.nodes();
  catalogStore.set({ catalog, loadError: null });
  await refreshChoices();
  return catalog;
}

/** Re-read the checkpoint and input-image lists (after an upload, or on the user's request). */
export async function refreshChoices(): Promise<void> {
  const [checkpoints, inputs] = await Promise.allSettled([api.checkpoints(), api.inputs()]);
  const dynamicChoices = { ...catalogStore.get().dynamicChoices };
  let checkpointDetails = catalogStore.get().checkpointDetails;
  if (checkpoints.status === "fulfilled") {
    dynamicChoices.checkpoints = checkpoints.value.checkpoints;
    checkpointDetails = checkpoints.value.details ?? {};
  }
  if (inputs.status === "fulfilled") dynamicChoices.input_images = inputs.value.images;
  catalogStore.set({ dynamicChoices, checkpointDetails });
}

export function isValueType(catalog: Catalog, type: string): boolean {
  return (catalog.value_types ?? DEFAULT_VALUE_TYPES).includes(type);
}

/** A socket input takes a link; a value input is a widget (unless it is linked). */
export function isSocketInput(catalog: Catalog, input: InputDecl): boolean {
  return !isValueType(catalog, input.type);
}

/** Value types that some node outputs: widgets of these types also get a socket. */
const linkableCache = new WeakMap<Catalog, Set<string>>();
export function linkableValueTypes(catalog: Catalog): Set<string> {
  let types = linkableCache.get(catalog);
  if (!types) {
    types = new Set<string>();
    for (const node of Object.values(catalog.nodes)) {
      for (const output of node.outputs) if (isValueType(catalog, output.type)) types.add(output.type);
    }
    linkableCache.set(catalog, types);
  }
  return types;
}

export function choicesFor(input: InputDecl, dynamicChoices: Record<string, string[]>): string[] {
  const dynamic = input.choices_from ? dynamicChoices[input.choices_from] : undefined;
  return dynamic ?? input.choices ?? [];
}

export function displayName(decl: NodeDecl): string {
  return decl.display_name || decl.name;
}

/** The default value of a widget: its declared default, else the first choice, else empty. */
export function defaultValue(input: InputDecl, dynamicChoices: Record<string, string[]>): number | string | boolean {
  if (input.default !== undefined && input.default !== null) return input.default;
  switch (input.type) {
    case "INT":
    case "FLOAT":
      return input.min !== undefined && input.min > 0 ? input.min : 0;
    case "BOOLEAN":
      return false;
    case "COMBO":
      return choicesFor(input, dynamicChoices)[0] ?? "";
    default:
      return "";
  }
}

const TYPE_COLORS: Record<string, string> = {
  MODEL: "#b39ddb",
  CLIP: "#ffd500",
  VAE: "#ff6e6e",
  CONDITIONING: "#ffa931",
  LATENT: "#ff9cf9",
  IMAGE: "#64b5f6",
  MASK: "#81c784",
  CONTROL_NET: "#00d78d",
  INT: "#7fb8a4",
  FLOAT: "#a3c97f",
  STRING: "#9fb0c8",
  BOOLEAN: "#c8a37f",
  COMBO: "#a0a0a0",
};

/** Socket colour of a type; types without a fixed colour get a stable colour from their name. */
export function typeColor(type: string): string {
  const known = TYPE_COLORS[type];
  if (known) return known;
  let hash = 0;
  for (const ch of type) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360}, 65%, 68%)`;
}

export interface CategoryTree {
  name: string;
  path: string;
  children: CategoryTree[];
  nodes: NodeDecl[];
}

/** Categories like "sampling/custom" become nested folders, sorted by name. */
export function categoryTree(catalog: Catalog): CategoryTree {
  const root: CategoryTree = { name: "", path: "", children: [], nodes: [] };
  for (const decl of Object.values(catalog.nodes)) {
    let folder = root;
    for (const part of (decl.category || "other").split("/").filter(Boolean)) {
      let child = folder.children.find((c) => c.name === part);
      if (!child) {
        child = { name: part, path: folder.path ? `${folder.path}/${part}` : part, children: [], nodes: [] };
        folder.children.push(child);
      }
      folder = child;
    }
    folder.nodes.push(decl);
  }
  const sort = (tree: CategoryTree) => {
    tree.children.sort((a, b) => a.name.localeCompare(b.name));
    tree.nodes.sort((a, b) => displayName(a).localeCompare(displayName(b)));
    tree.children.forEach(sort);
  };
  sort(root);
  return root;
}

/** What a search may be restricted to: nodes with an input or output of a type. */
export interface SearchFilter {
  inputType?: string;
  outputType?: string;
}

export function matchesFilter(decl: NodeDecl, filter?: SearchFilter): boolean {
  if (filter?.inputType && !decl.inputs.some((i) => i.type === filter.inputType)) return false;
  if (filter?.outputType && !decl.outputs.some((o) => o.type === filter.outputType)) return false;
  return true;
}
