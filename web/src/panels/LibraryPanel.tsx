// The server-side workflow library: save the current graph under a name, open or delete saved ones.
import { useCallback, useEffect, useState } from "react";
import { api } from "../api";
import { graphStore } from "../editor/graphStore";
import { toast } from "../editor/uiState";
import { openFromLibrary, saveToLibrary } from "../editor/workflowIO";
import { useStore } from "../store";
import { PanelClose } from "./QueuePanel";

interface Entry {
  name: string;
  modified?: number | string;
}

export function LibraryPanel() {
  const currentName = useStore(graphStore, (s) => s.name);
  const [name, setName] = useState(currentName);
  const [entries, setEntries] = useState<Entry[]>([]);

  useEffect(() => setName(currentName), [currentName]);

  const refresh = useCallback(async () => {
    try {
      const { workflows } = await api.listWorkflows();
      setEntries(workflows ?? []);
    } catch (err) {
      toast("error", `Cannot list saved workflows: ${err instanceof Error ? err.message : String(err)}`);
    }
  }, []);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  const save = async () => {
    const trimmed = name.trim();
    if (!trimmed) return;
    if (await saveToLibrary(trimmed)) void refresh();
  };

  const remove = async (entry: string) => {
    if (!window.confirm(`Delete the saved workflow “${entry}”?`)) return;
    try {
      await api.deleteWorkflow(entry);
    } catch (err) {
      toast("error", `Cannot delete: ${err instanceof Error ? err.message : String(err)}`);
    }
    void refresh();
  };

  return (
    <aside className="side-panel" data-testid="library-panel">
      <div className="panel-title">
        Workflow library
        <PanelClose />
      </div>
      <form
        className="save-form"
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <input value={name} onChange={(e) => setName(e.target.value)} placeholder="name" data-testid="library-name" />
        <button type="submit" data-testid="library-save">
          save
        </button>
      </form>
      {entries.map((entry) => (
        <div className="library-entry" key={entry.name} data-testid={`library-entry-${entry.name}`}>
          <button type="button" className="link" onClick={() => void openFromLibrary(entry.name)} data-testid={`library-open-${entry.name}`}>
            {entry.name}
          </button>
          <button type="button" className="small danger" onClick={() => void remove(entry.name)} title="Delete">
            ✕
          </button>
        </div>
      ))}
      {!entries.length && <div className="panel-empty">No saved workflows</div>}
    </aside>
  );
}
