// Images inside a node: the live preview while sampling, then the final images of the node.
import { mediaUrl } from "../api";
import { runStore } from "../editor/runState";
import { showLightbox } from "../editor/uiState";
import { useStore } from "../store";

export function NodeImages({ nodeId }: { nodeId: string }) {
  const images = useStore(runStore, (s) => s.images[nodeId]);
  const preview = useStore(runStore, (s) => s.previews[nodeId]);
  if (images?.length) {
    return (
      <div className={`node-images${images.length > 1 ? " grid" : ""}`} data-testid="node-images">
        {images.map((image) => {
          const url = mediaUrl(image.url);
          return (
            <img
              key={image.id}
              src={url}
              alt=""
              className="node-image nodrag"
              data-testid="node-image"
              data-image-id={image.id}
              draggable={false}
              onDoubleClick={() => showLightbox(url)}
            />
          );
        })}
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
