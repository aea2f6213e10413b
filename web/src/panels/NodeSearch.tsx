// The quick node search box (double-click on the canvas, or "/"): type, pick, the node appears.
import { useEffect, useMemo, useRef, useState } from "react";
import { catalogStore, displayName, searchNodes } from "../catalog";
import { addNode, connectToNew } from "../editor/graphStore";
import { closeSearch, uiStore } from "../editor/uiState";
import { useStore } from "../store";

const MAX_RESULTS = 40;

export function NodeSearch() {
  const search = useStore(uiStore, (s) => s.search);
  const catalog = useStore(catalogStore, (s) => s.catalog);
  const [query, setQuery] = useState("");
  const [active, setActive] = useState(0);
  const list = useRef<HTMLDivElement>(null);

  useEffect(() => {
    setQuery("");
    setActive(0);
  }, [search]);

  const results = useMemo(
    () => (catalog && search ? searchNodes(catalog, query, search.filter).slice(0, MAX_RESULTS) : []),
    [catalog, search, query],
  );

  useEffect(() => {
    list.current?.querySelector(".active")?.scrollIntoView({ block: "nearest" });
  }, [active]);

  if (!search || !catalog) return null;

  const choose = (type: string) => {
    const id = addNode(type, search.flow);
    if (id && search.dangling) connectToNew(id, search.dangling);
    closeSearch();
  };

  const left = Math.min(search.screen.x, window.innerWidth - 340);
  const top = Math.min(search.screen.y, window.innerHeight - 360);
  return (
    <>
      <div className="search-backdrop" onMouseDown={closeSearch} />
      <div className="node-search" style={{ left, top }} data-testid="search-box">
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
            } else if (e.key === "Enter" && results[active]) choose(results[active].name);
          }}
        />
        <div className="search-results" ref={list}>
          {results.map((decl, i) => (
            <div
              key={decl.name}
              className={`search-result${i === active ? " active" : ""}`}
              data-testid={`search-result-${decl.name}`}
              onMouseEnter={() => setActive(i)}
              onMouseDown={(e) => {
                e.preventDefault();
                choose(decl.name);
              }}
            >
              <span className="result-name">{displayName(decl)}</span>
              <span className="result-category">{decl.category}</span>
            </div>
          ))}
          {!results.length && <div className="search-empty">No node matches</div>}
        </div>
      </div>
    </>
  );
}
