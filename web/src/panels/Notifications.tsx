// Toasts, the banner of errors that belong to no node, the image viewer (one image or the gallery
// of images made since the page opened: previous/next, Escape closes) and questions to the user.
import { useEffect, useState } from "react";
import { mediaUrl } from "../api";
import { clearErrors, runStore } from "../editor/runState";
import { closeViewer, dismissToast, openViewer, stepViewer, uiStore } from "../editor/uiState";
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

/** The gallery: every image our jobs made since the page opened, newest last. */
export function openGallery(index?: number): void {
  const urls = runStore.get().gallery.map((image) => mediaUrl(image.url));
  openViewer(urls, index ?? urls.length - 1);
}

export function Viewer() {
  const viewer = useStore(uiStore, (s) => s.viewer);
  if (!viewer) return null;
  const { urls, index } = viewer;
  return (
    <div className="lightbox" onClick={closeViewer} data-testid="lightbox">
      <img src={urls[index]} alt="" data-testid="lightbox-image" onClick={(e) => e.stopPropagation()} />
      {urls.length > 1 && (
        <>
          <button type="button" className="viewer-nav prev" data-testid="lightbox-prev" disabled={index === 0} onClick={(e) => (e.stopPropagation(), stepViewer(-1))} title="Previous (←)">
            ‹
          </button>
          <button type="button" className="viewer-nav next" data-testid="lightbox-next" disabled={index === urls.length - 1} onClick={(e) => (e.stopPropagation(), stepViewer(1))} title="Next (→)">
            ›
          </button>
        </>
      )}
      <div className="viewer-caption" data-testid="lightbox-position">
        {index + 1} / {urls.length}
      </div>
      <button type="button" className="viewer-close" data-testid="lightbox-close" onClick={closeViewer} title="Close (Escape)">
        ✕
      </button>
    </div>
  );
}

export function DialogBox() {
  const dialog = useStore(uiStore, (s) => s.dialog);
  const [text, setText] = useState("");
  useEffect(() => setText(dialog?.input ?? ""), [dialog]);
  if (!dialog) return null;
  const answer = (value: string) => dialog.resolve(dialog.input !== undefined && value !== "cancel" ? text.trim() || null : value);
  return (
    <div className="modal-backdrop" data-testid="dialog" onMouseDown={(e) => e.target === e.currentTarget && dialog.resolve(null)}>
      <form
        className="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          answer(dialog.choices.find((c) => c.primary)?.value ?? dialog.choices[0].value);
        }}
      >
        <div className="dialog-message">{dialog.message}</div>
        {dialog.input !== undefined && (
          <input autoFocus value={text} onChange={(e) => setText(e.target.value)} data-testid="dialog-input" />
        )}
        <div className="dialog-buttons">
          {dialog.choices.map((choice) => (
            <button
              key={choice.value}
              type="button"
              className={choice.primary ? "primary" : ""}
              data-testid={`dialog-${choice.value}`}
              onClick={() => answer(choice.value)}
            >
              {choice.label}
            </button>
          ))}
        </div>
      </form>
    </div>
  );
}
