// Workflow tabs above the canvas (each open graph with its own undo), and, inside a subgraph, the
// breadcrumb back out to the levels around it.
import { graphStore } from "../editor/graphStore";
import { closeSubgraphs } from "../editor/subgraphs";
import { closeTab, switchTab, tabsStore } from "../editor/tabs";
import { ask } from "../editor/uiState";
import { newDefaultTab, openDefaultWorkflow } from "../editor/workflowIO";
import { useStore } from "../store";

async function confirmClose(id: string, name: string, dirty: boolean): Promise<void> {
  if (dirty) {
    const choice = await ask(`Close “${name}”? Its unsaved changes will be lost.`, [
      { label: "Close", value: "close" },
      { label: "Cancel", value: "cancel", primary: true },
    ]);
    if (choice !== "close") return;
  }
  closeTab(id, () => void openDefaultWorkflow());
}

export function TabBar() {
  const tabs = useStore(tabsStore, (s) => s.tabs);
  const active = useStore(tabsStore, (s) => s.active);
  return (
    <div className="tab-bar" data-testid="tab-bar">
      {tabs.map((tab, i) => (
        <div
          key={tab.id}
          className={`tab${tab.id === active ? " active" : ""}`}
          data-testid={`tab-${i}`}
          data-active={tab.id === active}
          title={tab.name}
          onMouseDown={(e) => e.button === 0 && switchTab(tab.id)}
          onAuxClick={(e) => e.button === 1 && void confirmClose(tab.id, tab.name, tab.dirty)}
        >
          <span className="tab-name">{tab.name}</span>
          {tab.dirty && <span className="tab-dirty" data-testid="tab-dirty" title="Unsaved changes" />}
          <button
            type="button"
            className="tab-close"
            title="Close"
            data-testid={`tab-close-${i}`}
            onMouseDown={(e) => e.stopPropagation()}
            onClick={() => void confirmClose(tab.id, tab.name, tab.dirty)}
          >
            ×
          </button>
        </div>
      ))}
      <button type="button" className="tab-new" title="New tab (default workflow)" data-testid="tab-new" onClick={newDefaultTab}>
        +
      </button>
    </div>
  );
}

export function Breadcrumb() {
  const stack = useStore(graphStore, (s) => s.stack);
  const name = useStore(graphStore, (s) => s.name);
  if (!stack.length) return null;
  return (
    <nav className="breadcrumb" data-testid="breadcrumb">
      <button type="button" className="link" data-testid="breadcrumb-0" onClick={() => closeSubgraphs(0)}>
        {name}
      </button>
      {stack.map((level, i) => (
        <span key={i}>
          <span className="crumb-sep">›</span>
          {i < stack.length - 1 ? (
            <button type="button" className="link" data-testid={`breadcrumb-${i + 1}`} onClick={() => closeSubgraphs(i + 1)}>
              {level.title}
            </button>
          ) : (
            <span className="crumb-current" data-testid="breadcrumb-current">
              {level.title}
            </span>
          )}
        </span>
      ))}
    </nav>
  );
}
