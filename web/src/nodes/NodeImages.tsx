// Images inside a node: the live preview while sampling, then the final images of the node.
import { mediaUrl } from "../api";
import { runStore } from "../editor/runState";
import { openViewer } from "../editor/uiState";
import { useStore } from "../store";
import type { JobImage } from "../types";

/** The images of the first node inside a subgraph node that has some (its results, seen from outside). */
function innerImages(images: Record<string, JobImage[]>, path: string): JobImage[] | undefined {
  const key = Object.keys(images).find((k) => k.startsWith(path + "/"));
  return key ? images[key] : undefined;
}

export function NodeImages({ path, inner }: { path: string; inner?: boolean }) {
  const images = useStore(runStore, (s) => s.images[path] ?? (inner ? innerImages(s.images, path) : undefined));
  const preview = useStore(runStore, (s) => s.previews[path]);
  if (images?.length) {
    const urls = images.map((image) => mediaUrl(image.url));
    return (
      <div className={`node-images${images.length > 1 ? " grid" : ""}`} data-testid="node-images">
        {images.map((image, i) => (
          <img
            key={image.id}
            src={urls[i]}
            alt=""
            className="node-image nodrag"
            data-testid="node-image"
            data-image-id={image.id}
            draggable={false}
            decoding="async"
            onDoubleClick={() => openViewer(urls, i)}
          />
        ))}
      </div>
    );
  }
  if (preview) {
    return (
      <div className="node-images">
        <img src={preview} alt="" className="node-image preview" data-testid="node-preview" draggable={false} />
      </div>
    );
  }
  return null;
}
