// Images inside a node: the live preview while sampling, then the final images of the node.
import { mediaUrl } from "../api";
import { runStore } from "../editor/runState";
import { openViewer } from "../editor/uiState";
import { useStore } from "../store";

export function NodeImages({ path }: { path: string }) {
  const images = useStore(runStore, (s) => s.images[path]);
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
