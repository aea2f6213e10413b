// The mask editor of LoadImage (ComfyUI's "Open in MaskEditor"): paint over the picture the part
// to repaint; Save uploads a copy whose alpha is 0 there, which LoadImage reads as its MASK.
import { useEffect, useRef, useState, type PointerEvent, type SyntheticEvent } from "react";
import { createPortal } from "react-dom";
import { api } from "../api";
import { toast } from "../editor/uiState";
import { decode as decodePng, encode as encodePng } from "fast-png";

const MASK_RGB = [255, 64, 160];

/** The pixels of an 8-bit RGBA PNG as stored; null for any other file. */
function rgbaPng(bytes: Uint8Array): ImageData | null {
  try {
    const png = decodePng(bytes);
    if (png.depth !== 8 || png.channels !== 4 || png.palette) return null;
    return new ImageData(new Uint8ClampedArray(png.data), png.width, png.height);
  } catch {
    return null; // not a PNG
  }
}

/** The picture's pixels with the RGB under transparent parts kept where the file allows it. */
async function loadPixels(name: string): Promise<ImageData> {
  const response = await fetch(api.inputImageUrl(name));
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const blob = await response.blob();
  // A 2D canvas stores premultiplied colours: it loses the RGB under transparent pixels, which
  // LoadImage feeds to the sampler. 8-bit RGBA PNGs are therefore decoded as stored.
  const exact = rgbaPng(new Uint8Array(await blob.arrayBuffer()));
  if (exact) return exact;
  // Other files through a canvas: exact for opaque pixels; "none" keeps the colours as stored,
  // as the server reads them.
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none" });
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext("2d")!;
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return context.getImageData(0, 0, canvas.width, canvas.height);
}

/** "cat-3f9a2c1d.png" and its masked copies "cat-mask-0b1c2d3e.png" all save as "cat-mask". */
function maskFileName(image: string): string {
  const stem = image.replace(/^.*[\\/]/, "").replace(/\.[^.]*$/, "").replace(/(-mask)?-[0-9a-f]{8}$/, "");
  return `${stem || "image"}-mask.png`;
}

// Events in a portal still bubble to the node's React handlers (select, context menu, image drop).
const keep = (e: SyntheticEvent) => e.stopPropagation();
const swallow = (e: SyntheticEvent) => {
  e.stopPropagation();
  e.preventDefault();
};

interface Props {
  image: string;
  /** Uploads the masked picture and selects it; false if that failed. */
  onSave: (file: File) => Promise<boolean>;
  onClose: () => void;
}

export function MaskEditor({ image, onSave, onClose }: Props) {
  const [pixels, setPixels] = useState<ImageData | null>(null);
  const [brush, setBrush] = useState(32);
  const [erasing, setErasing] = useState(false);
  const [saving, setSaving] = useState(false);
  const picture = useRef<HTMLCanvasElement>(null);
  const mask = useRef<HTMLCanvasElement>(null);
  const last = useRef<{ x: number; y: number } | null>(null);

  useEffect(() => {
    let live = true;
    loadPixels(image).then(
      (data) => live && setPixels(data),
      (err: unknown) => {
        toast("error", `Cannot open ${image}: ${err instanceof Error ? err.message : String(err)}`);
        onClose();
      },
    );
    return () => {
      live = false;
    };
  }, [image]); // not onClose: a new function on every render of the node

  // The picture is shown opaque; its transparent part starts out painted.
  useEffect(() => {
    if (!pixels) return;
    const shown = new ImageData(new Uint8ClampedArray(pixels.data), pixels.width, pixels.height);
    const painted = new ImageData(pixels.width, pixels.height);
    for (let i = 0; i < shown.data.length; i += 4) {
      painted.data.set(MASK_RGB, i);
      painted.data[i + 3] = 255 - shown.data[i + 3];
      shown.data[i + 3] = 255;
    }
    picture.current?.getContext("2d")?.putImageData(shown, 0, 0);
    mask.current?.getContext("2d")?.putImageData(painted, 0, 0);
  }, [pixels]);

  // Capture phase, so that no editor shortcut (Delete, Ctrl+Z, ...) acts on the graph behind.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      e.stopPropagation();
      if (e.key === "Escape" && !saving) onClose();
    };
    window.addEventListener("keydown", onKey, true);
    return () => window.removeEventListener("keydown", onKey, true);
  }, [onClose, saving]);

  const paint = (e: PointerEvent<HTMLCanvasElement>) => {
    const canvas = e.currentTarget;
    const rect = canvas.getBoundingClientRect();
    const x = ((e.clientX - rect.left) * canvas.width) / rect.width;
    const y = ((e.clientY - rect.top) * canvas.height) / rect.height;
    const context = canvas.getContext("2d")!;
    context.globalCompositeOperation = erasing ? "destination-out" : "source-over";
    context.fillStyle = context.strokeStyle = `rgb(${MASK_RGB.join(",")})`;
    context.lineWidth = brush;
    context.lineCap = "round";
    context.beginPath();
    if (last.current) {
      context.moveTo(last.current.x, last.current.y);
      context.lineTo(x, y);
      context.stroke();
    } else {
      context.arc(x, y, brush / 2, 0, 2 * Math.PI);
      context.fill();
    }
    last.current = { x, y };
  };

  const clear = () => {
    const canvas = mask.current;
    canvas?.getContext("2d")?.clearRect(0, 0, canvas.width, canvas.height);
  };

  const save = async () => {
    if (!pixels || !mask.current) return;
    setSaving(true);
    const painted = mask.current.getContext("2d")!.getImageData(0, 0, pixels.width, pixels.height).data;
    const out = new ImageData(new Uint8ClampedArray(pixels.data), pixels.width, pixels.height);
    // The mask is binary: the soft edge of the brush counts from half coverage on.
    for (let i = 3; i < out.data.length; i += 4) out.data[i] = painted[i] >= 128 ? 0 : 255;
    try {
      // Written as PNG bytes directly: a canvas's toBlob would drop the RGB under the mask.
      const bytes = encodePng({ width: out.width, height: out.height, data: out.data, channels: 4, depth: 8 });
      const file = new File([new Uint8Array(bytes)], maskFileName(image), { type: "image/png" });
      if (await onSave(file)) return onClose();
    } catch (err) {
      toast("error", `Cannot save the mask: ${err instanceof Error ? err.message : String(err)}`);
    }
    setSaving(false);
  };

  // Scaled to fit the window, small pictures enlarged so they can be painted.
  const scale = pixels ? Math.min((window.innerWidth * 0.9) / pixels.width, (window.innerHeight - 140) / pixels.height) : 1;
  return createPortal(
    <div className="modal-backdrop" onClick={keep} onDoubleClick={keep} onContextMenu={swallow} onDragOver={swallow} onDrop={swallow}>
      <div className="mask-editor" role="dialog" aria-label={`Mask of ${image}`} data-testid="mask-editor">
        {pixels ? (
          <div className="mask-stage" style={{ width: pixels.width * scale, height: pixels.height * scale }}>
            <canvas ref={picture} width={pixels.width} height={pixels.height} />
            <canvas
              ref={mask}
              className="mask-paint"
              width={pixels.width}
              height={pixels.height}
              data-testid="mask-canvas"
              onPointerDown={(e) => {
                if (e.button !== 0) return;
                e.currentTarget.setPointerCapture(e.pointerId);
                last.current = null;
                paint(e);
              }}
              onPointerMove={(e) => e.currentTarget.hasPointerCapture(e.pointerId) && paint(e)}
              onPointerUp={() => (last.current = null)}
            />
          </div>
        ) : (
          <div className="mask-loading">Loading {image}…</div>
        )}
        <div className="mask-tools">
          <label title="Brush diameter in pixels of the picture">
            brush
            <input
              type="range"
              min={1}
              max={256}
              value={brush}
              data-testid="mask-brush-size"
              onChange={(e) => setBrush(Number(e.target.value))}
            />
            <span className="mask-brush-value">{brush}</span>
          </label>
          <button type="button" className={erasing ? "on" : ""} onClick={() => setErasing(!erasing)} data-testid="mask-eraser">
            eraser
          </button>
          <button type="button" onClick={clear} data-testid="mask-clear">
            clear
          </button>
          <span className="spacer" />
          <button type="button" onClick={onClose} disabled={saving} data-testid="mask-cancel">
            cancel
          </button>
          <button type="button" className="primary" onClick={() => void save()} disabled={!pixels || saving} data-testid="mask-save">
            {saving ? "saving…" : "save"}
          </button>
        </div>
      </div>
    </div>,
    document.body,
  );
}
