// Toasts, the banner of errors that belong to no node, and the full-size image viewer.
import { clearErrors, runStore } from "../editor/runState";
import { dismissToast, showLightbox, uiStore } from "../editor/uiState";
import { useStore } from "../store";

export function Toasts() {
  const toasts = useStore(uiStore, (s) => s.toasts);
  return (
    <div className="toasts">
      {toasts.map((t) => (
        <div key={t.id} className={`toast ${t.kind}`} data-testid={`toast-${t.kind}`} onClick={() => dismissToast(t.id)}>
          {t.text}
        </div>
      ))}
    </div>
  );
}

export function ErrorBanner() {
  const errors = useStore(runStore, (s) => s.globalErrors);
  if (!errors.length) return null;
  return (
    <div className="error-banner" data-testid="error-banner">
      <div className="error-list">
        {errors.slice(0, 6).map((e, i) => (
          <div key={i}>{e.message}</div>
        ))}
        {errors.length > 6 && <div>… and {errors.length - 6} more</div>}
      </div>
      <button type="button" className="small" onClick={clearErrors}>
        dismiss
      </button>
    </div>
  );
}

export function Lightbox() {
  const url = useStore(uiStore, (s) => s.lightbox);
  if (!url) return null;
  return (
    <div className="lightbox" onClick={() => showLightbox(null)} data-testid="lightbox">
      <img src={url} alt="" />
    </div>
  );
}
