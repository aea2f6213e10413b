// A group: a titled, coloured frame drawn behind nodes. Dragging its title moves the nodes inside
// it (graphStore.startDrag); its corner resizes it.
import { NodeResizer, type NodeProps } from "@xyflow/react";
import { memo, type CSSProperties } from "react";
import { setTitle } from "../editor/graphStore";
import { startRenaming, uiStore } from "../editor/uiState";
import type { FrameNode as FrameNodeType } from "../graphModel";
import { useStore } from "../store";

function FrameView({ id, data, selected }: NodeProps<FrameNodeType>) {
  const renaming = useStore(uiStore, (s) => s.renaming === id);
  return (
    <div className={`lg-frame${selected ? " selected" : ""}`} data-testid={`group-${id}`} style={{ "--frame-color": data.color } as CSSProperties}>
      <NodeResizer isVisible={!!selected} minWidth={160} minHeight={80} lineClassName="frame-resize-line" handleClassName="frame-resize-handle" />
      <div className="lg-frame-title" data-testid="group-title" onDoubleClick={() => startRenaming(id)}>
        {renaming ? (
          <input
            className="title-input nodrag"
            autoFocus
            defaultValue={data.title}
            onFocus={(e) => e.currentTarget.select()}
            onBlur={(e) => {
              setTitle(id, e.target.value);
              startRenaming(null);
            }}
            onKeyDown={(e) => {
              if (e.key === "Enter") e.currentTarget.blur();
              if (e.key === "Escape") startRenaming(null);
            }}
          />
        ) : (
          data.title
        )}
      </div>
    </div>
  );
}

export const FrameNode = memo(FrameView);
