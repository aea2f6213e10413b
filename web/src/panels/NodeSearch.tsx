// The quick node search box (double-click on the canvas, "/", or a wire dropped on empty canvas):
// type, pick, the node appears. Beside the results: what the highlighted node does and its sockets.
import { useEffect, useMemo, useRef, useState } from "react";
import { catalogStore, displayName } from "../catalog";
import { addNode, connectToNew } from "../editor/graphStore";
import { insertComponent, listComponents } from "../editor/subgraphs";
import { closeSearch, uiStore } from "../editor/uiState";
import { componentsStore, entryKey, entryTitle, rememberChoice, searchEntries, type SearchEntry } from "../search";
import { useStore } from "../store";

const MAX_RESULTS = 40;

export async function refreshComponents(): Promise<void> {
  componentsStore.set({ names: await listComponents() });
}

function Details({ entry }: { entry: SearchEntry | undefined }) {
  if (!entry) return null;
  if (entry.kind === "component") {
    return (
      <div className="search-details" data-testid="search-details">
        <div className="details-title">{entry.name}</div>
        <div className="details-text">A saved component (a subgraph from the library). It is added as one node; open it to see inside.</div>
      </div>
    );
  }
  const { decl } = entry;
  return (
    <div className="search-details" data-testid="search-details">
      <div className="details-title">{displayName(decl)}</div>
      <div className="details-category">{decl.category}</div>
      {decl.description && <div className="details-text">{decl.description}</div>}
      {decl.inputs.length > 0 && (
        <div className="details-section">
          <div className="details-heading">inputs</div>
          {decl.inputs.map((i) => (
            <div className="details-socket" key={i.name}>
              <span>{i.name}</span>
              <span className="details-type">{i.type}</span>
            </div>
          ))}
        </div>
      )}
      {decl.outputs.length > 0 && (
        <div className="details-section">
          <div className="details-heading">outputs</div>
          {decl.outputs.map((o) => (
            <div className="details-socket" key={o.name}>
              <span>{o.name}</span>
              <span className="details-type">{o.type}</span>
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

export function NodeSearch() {
  const search = useStore(uiStore, (s) => s.search);
  const catalog = useStore(catalogStore, (s) => s.catalog);
  const components = useStore(componentsStore, (s) => s.names);
  const [query, setQuery] = useState("");
  const [active, setActive] = useState(0);
  const list = useRef<HTMLDivElement>(null);

  useEffect(() => {
    setQuery("");
    setActive(0);
    if (search) void refreshComponents();
  }, [search]);

  const results = useMemo(
    () => (catalog && search ? searchEntries(catalog, query, search.filter, components).slice(0, MAX_RESULTS) : []),
    [catalog, search, query, components],
  );

  useEffect(() => {
    list.current?.querySelector(".active")?.scrollIntoView({ block: "nearest" });
  }, [active]);

  if (!search || !catalog) return null;

  const choose = async (entry: SearchEntry) => {
    closeSearch();
    rememberChoice(entryKey(entry));
    const id = entry.kind === "node" ? addNode(entry.decl.name, search.flow) : await insertComponent(entry.name, search.flow);
    if (id && search.dangling) connectToNew(id, search.dangling);
  };

  const left = Math.min(search.screen.x, window.innerWidth - 600);
  const top = Math.min(search.screen.y, window.innerHeight - 380);
  return (
    <>
      <div className="search-backdrop" onMouseDown={closeSearch} />
      <div className="node-search" style={{ left: Math.max(8, left), top: Math.max(8, top) }} data-testid="search-box">
        <div className="search-main">
          <input
            autoFocus
            placeholder={search.filter ? `Search nodes (${search.filter.inputType ?? search.filter.outputType})…` : "Search nodes…"}
            value={query}
            data-testid="search-input"
            onChange={(e) => {
              setQuery(e.target.value);
              setActive(0);
            }}
            onKeyDown={(e) => {
              if (e.key === "Escape") closeSearch();
              else if (e.key === "ArrowDown") {
                e.preventDefault();
                setActive((a) => Math.min(a + 1, results.length - 1));
              } else if (e.key === "ArrowUp") {
                e.preventDefault();
                setActive((a) => Math.max(a - 1, 0));
              } else if (e.key === "Enter" && results[active]) void choose(results[active]);
            }}
          />
          <div className="search-results" ref={list}>
            {results.map((entry, i) => (
              <div
                key={entryKey(entry)}
                className={`search-result${i === active ? " active" : ""}`}
                data-testid={entry.kind === "node" ? `search-result-${entry.decl.name}` : `search-result-component-${entry.name}`}
                onMouseEnter={() => setActive(i)}
                onMouseDown={(e) => {
                  e.preventDefault();
                  void choose(entry);
                }}
              >
                <span className="result-name">{entryTitle(entry)}</span>
                <span className="result-category">{entry.kind === "node" ? entry.decl.category : "component"}</span>
              </div>
            ))}
            {!results.length && <div className="search-empty">No node matches</div>}
          </div>
        </div>
        <Details entry={results[active]} />
      </div>
    </>
  );
}
