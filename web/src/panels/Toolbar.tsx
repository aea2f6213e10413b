// The top bar: workflow name and file actions, edit actions, run controls, panel toggles.
import { type ReactNode, useRef } from "react";
import { graphStore, redo, setName, undo } from "../editor/graphStore";
import { interrupt, queueRuns, validateGraph } from "../editor/run";
import { runStore } from "../editor/runState";
import { type SidePanel, togglePalette, togglePanel, uiStore } from "../editor/uiState";
import { fitView } from "../editor/flow";
import { downloadWorkflow, openDefaultWorkflow, openFile } from "../editor/workflowIO";
import { useStore } from "../store";
import { openGallery } from "./Notifications";

/** A toolbar button that opens (or folds away) one of the right-hand panels. */
function PanelButton({ name, title, children }: { name: Exclude<SidePanel, null>; title: string; children: ReactNode }) {
  const panel = useStore(uiStore, (s) => s.panel);
  return (
    <button type="button" className={panel === name ? "on" : ""} onClick={() => togglePanel(name)} title={title} data-testid={`${name}-button`}>
      {children}
    </button>
  );
}

export function Toolbar() {
  const name = useStore(graphStore, (s) => s.name);
  const canUndo = useStore(graphStore, (s) => s.past.length > 0);
  const canRedo = useStore(graphStore, (s) => s.future.length > 0);
  const connection = useStore(runStore, (s) => s.connection);
  const queued = useStore(runStore, (s) => (s.queue.running_jobs?.length ?? (s.queue.running ? 1 : 0)) + s.queue.pending.length);
  const running = useStore(runStore, (s) => s.queue.running !== null);
  const paletteOpen = useStore(uiStore, (s) => s.paletteOpen);
  const batchCount = useStore(uiStore, (s) => s.batchCount);
  const fileInput = useRef<HTMLInputElement>(null);
  const made = useStore(runStore, (s) => s.gallery.length);

  return (
    <header className="toolbar">
      <button
        type="button"
        className={`icon${paletteOpen ? " on" : ""}`}
        title="Node library"
        onClick={togglePalette}
        data-testid="palette-button"
      >
        ☰
      </button>
      <span className="brand">latentgraph</span>
      <input
        className="workflow-name"
        value={name}
        onChange={(e) => setName(e.target.value)}
        title="Workflow name"
        data-testid="workflow-name"
      />
      <div className="group">
        <button type="button" onClick={() => void openDefaultWorkflow()} title="Open the default workflow" data-testid="new-button">
          default
        </button>
        <button type="button" onClick={() => fileInput.current?.click()} title="Open a workflow file or PNG" data-testid="open-button">
          open
        </button>
        <input
          ref={fileInput}
          type="file"
          accept=".json,application/json,image/png,image/webp,image/jpeg"
          hidden
          data-testid="open-file-input"
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) void openFile(file);
            e.target.value = "";
          }}
        />
        <button type="button" onClick={downloadWorkflow} title="Download the workflow as JSON" data-testid="download-button">
          download
        </button>
        <PanelButton name="library" title="Saved workflows on the server">
          library
        </PanelButton>
      </div>
      <div className="group">
        <button type="button" onClick={undo} disabled={!canUndo} title="Undo (Ctrl+Z)" data-testid="undo-button">
          ↶
        </button>
        <button type="button" onClick={redo} disabled={!canRedo} title="Redo (Ctrl+Shift+Z)" data-testid="redo-button">
          ↷
        </button>
        <button type="button" onClick={fitView} title="Fit view (.)">
          fit
        </button>
        <button type="button" onClick={() => void validateGraph()} title="Check the graph without running it" data-testid="validate-button">
          validate
        </button>
      </div>
      <div className="spacer" />
      <span className={`connection ${connection}`} title={`server: ${connection}`} data-testid="connection" data-state={connection} />
      <button type="button" className="danger" onClick={() => void interrupt()} disabled={!running} title="Interrupt the running job" data-testid="interrupt-button">
        ■ stop
      </button>
      <button type="button" className="primary" onClick={() => void queueRuns(batchCount)} title="Queue the graph (Ctrl+Enter)" data-testid="run-button">
        ▶ Run
      </button>
      <input
        className="batch-count"
        type="number"
        min={1}
        max={100}
        value={batchCount}
        title="Batch count: jobs queued per run"
        data-testid="batch-count"
        onChange={(e) => uiStore.set({ batchCount: Math.max(1, Math.min(100, Math.round(Number(e.target.value) || 1))) })}
      />
      <button type="button" onClick={() => openGallery()} disabled={!made} title="Images made since the page opened" data-testid="gallery-button">
        gallery <span className="count" data-testid="gallery-count">{made}</span>
      </button>
      <PanelButton name="sweep" title="Sweep: many jobs from this graph, over lists of input values (an XY grid)">
        sweep
      </PanelButton>
      <PanelButton name="queue" title="Queue and history">
        queue <span className="count">{queued}</span>
      </PanelButton>
    </header>
  );
}
