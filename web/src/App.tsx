// The editor shell: loads the catalog, connects to the server's events, lays out the panels.
import { useCallback, useEffect, useRef, useState } from "react";
import { loadCatalog } from "./catalog";
import { Canvas } from "./editor/Canvas";
import { handleEvent, refreshHistory, setConnection } from "./editor/runState";
import { handleKeyDown } from "./editor/shortcuts";
import { uiStore } from "./editor/uiState";
import { openInitialWorkflow, startAutosave } from "./editor/workflowIO";
import { ContextMenu } from "./panels/ContextMenu";
import { LibraryPanel } from "./panels/LibraryPanel";
import { DialogBox, ErrorBanner, Toasts, Viewer } from "./panels/Notifications";
import { NodeSearch } from "./panels/NodeSearch";
import { Palette } from "./panels/Palette";
import { QueuePanel } from "./panels/QueuePanel";
import { SweepPanel } from "./panels/SweepPanel";
import { Breadcrumb, TabBar } from "./panels/TabBar";
import { Toolbar } from "./panels/Toolbar";
import { useStore } from "./store";
import { connectEvents } from "./ws";

type Phase = { state: "loading" } | { state: "failed"; message: string } | { state: "ready" };

export function App() {
  const [phase, setPhase] = useState<Phase>({ state: "loading" });
  const panel = useStore(uiStore, (s) => s.panel);
  const paletteOpen = useStore(uiStore, (s) => s.paletteOpen);
  const started = useRef(false);

  const load = useCallback(() => {
    setPhase({ state: "loading" });
    loadCatalog().then(
      () => setPhase({ state: "ready" }),
      (err: unknown) => setPhase({ state: "failed", message: err instanceof Error ? err.message : String(err) }),
    );
  }, []);

  useEffect(() => {
    load();
    const socket = connectEvents(handleEvent, setConnection);
    window.addEventListener("keydown", handleKeyDown);
    void refreshHistory();
    return () => {
      socket.close();
      window.removeEventListener("keydown", handleKeyDown);
    };
  }, [load]);

  // The first workflow opens once React Flow is ready, so its viewport can be applied.
  const onCanvasReady = useCallback(() => {
    if (started.current) return;
    started.current = true;
    openInitialWorkflow();
    startAutosave();
  }, []);

  if (phase.state !== "ready") {
    return (
      <div className="splash" data-testid="splash">
        <div className="brand">latentgraph</div>
        {phase.state === "loading" ? (
          <div>Loading the node catalog…</div>
        ) : (
          <>
            <div className="splash-error">Cannot load the node catalog: {phase.message}</div>
            <button type="button" onClick={load}>
              retry
            </button>
          </>
        )}
      </div>
    );
  }

  return (
    <div className="app">
      <Toolbar />
      <div className="main">
        {paletteOpen && <Palette />}
        <div className="canvas-area">
          <TabBar />
          <div className="canvas-holder">
            <Canvas onReady={onCanvasReady} />
            <Breadcrumb />
            <ErrorBanner />
          </div>
          <NodeSearch />
        </div>
        {panel === "queue" && <QueuePanel />}
        {panel === "library" && <LibraryPanel />}
        {panel === "sweep" && <SweepPanel />}
      </div>
      <ContextMenu />
      <Toasts />
      <Viewer />
      <DialogBox />
    </div>
  );
}
