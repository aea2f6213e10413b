// Groups: titled, coloured frames around nodes (ComfyUI's groups). They are stored in the
// workflow's `ui.groups`; dragging one moves the nodes inside it (graphStore.startDrag).
import { type EditorNode, FRAME_COLORS, frameNode, isFrame, nextLocalId } from "../graphModel";
import { commit, graphStore } from "./graphStore";

const PADDING = 24;
const TITLE = 36;

/** A frame around the given nodes (or an empty one at `at`); returns its id. */
export function addGroup(ids: string[], at?: { x: number; y: number }, title = "Group"): string {
  const { nodes } = graphStore.get();
  const members = nodes.filter((n) => ids.includes(n.id) && !isFrame(n));
  const id = nextLocalId("g", nodes);
  let frame;
  if (members.length) {
    const box = (n: EditorNode) => [n.position.x, n.position.y, n.position.x + (n.measured?.width ?? 200), n.position.y + (n.measured?.height ?? 100)];
    const boxes = members.map(box);
    const x0 = Math.min(...boxes.map((b) => b[0])) - PADDING;
    const y0 = Math.min(...boxes.map((b) => b[1])) - PADDING - TITLE;
    const x1 = Math.max(...boxes.map((b) => b[2])) + PADDING;
    const y1 = Math.max(...boxes.map((b) => b[3])) + PADDING;
    frame = frameNode(id, { x: Math.round(x0), y: Math.round(y0) }, [Math.round(x1 - x0), Math.round(y1 - y0)], title, FRAME_COLORS[0]);
  } else {
    frame = frameNode(id, at ?? { x: 0, y: 0 }, [420, 300], title, FRAME_COLORS[0]);
  }
  commit();
  // Frames go first so that they are drawn behind the nodes.
  graphStore.set((s) => ({ nodes: [{ ...frame, selected: false }, ...s.nodes] }));
  return id;
}
