// One node on the canvas, drawn from its declaration: sockets, widgets, run state, images.
//
// Hundreds of these are on screen at once, so each reads only its own slice of the stores, and
// zoomed out (text too small to read) it draws a light version: no form controls, no resize corner.
// Sockets are positioned without CSS transforms, which would make Chromium re-layer every node on
// each frame of a pan.
import { Handle, NodeResizeControl, Position, type NodeProps } from "@xyflow/react";
import { memo, type DragEvent } from "react";
import { catalogStore, displayName, isSocketInput, linkableValueTypes, typeColor } from "../catalog";
import { commit, graphStore, linkedInputsKey, missingLinks, setControl, setSize, setTitle, setValue } from "../editor/graphStore";
import { runStore } from "../editor/runState";
import { levelPrefix, openSubgraph } from "../editor/subgraphs";
import { startRenaming, uiStore, zoomStore } from "../editor/uiState";
import { checkValue, declOf, type GraphNode as GraphNodeType } from "../graphModel";
import { useStore } from "../store";
import type { Constant, InputDecl, OutputDecl } from "../types";
import { ControlWidget } from "../widgets/ControlWidget";
import { uploadInputImage } from "../widgets/ImageUploadWidget";
import { Widget } from "../widgets/Widget";
import { NodeImages } from "./NodeImages";

const NO_ERRORS = { node: [] as string[], inputs: {} as Record<string, string[]> };
/** Below this zoom node text is under ~6 px: draw the light version (no form controls). Below
 * TINY_ZOOM the canvas also hides the text of nodes, by a CSS class (see Canvas's ZoomLevel). */
export const FAR_ZOOM = 0.5;
export const TINY_ZOOM = 0.25;

/**
 * A socket. `still` draws a plain element React Flow measures like a socket (wires attach to it)
 * but that does not follow the store: zoomed out, hundreds of sockets would otherwise each run a
 * store selector on every frame of a pan.
 */
export function Socket({ kind, name, type, hidden, still }: { kind: "in" | "out"; name: string; type: string; hidden?: boolean; still?: boolean }) {
  if (still) {
    const side = kind === "in" ? "left" : "right";
    return (
      <div
        className={`react-flow__handle react-flow__handle-${side} nodrag ${kind === "in" ? "target" : "source"} connectable connectableend socket${hidden ? " hidden-socket" : ""}`}
        data-handleid={name}
        data-handlepos={side}
        data-testid={`handle-${kind}-${name}`}
        data-socket-type={type}
        style={{ background: typeColor(type) }}
      />
    );
  }
  return (
    <Handle
      type={kind === "in" ? "target" : "source"}
      position={kind === "in" ? Position.Left : Position.Right}
      id={name}
      className={`socket${hidden ? " hidden-socket" : ""}`}
      data-testid={`handle-${kind}-${name}`}
      data-socket-type={type}
      style={{ background: typeColor(type) }}
      title={type}
    />
  );
}

function InputMessages({ name, messages }: { name: string; messages: string[] }) {
  if (!messages.length) return null;
  return (
    <div className="input-error" data-testid={`input-error-${name}`}>
      {messages.join("; ")}
    </div>
  );
}

/** A widget's value as plain text, for the light version of a node (short: nothing clips it). */
function WidgetText({ input, value }: { input: InputDecl; value: Constant | undefined }) {
  const full = input.multiline || value === undefined ? "" : String(value);
  const text = full.length > 18 ? `${full.slice(0, 17)}…` : full;
  return (
    <div className={`widget-text${input.multiline ? " multiline" : ""}`}>
      <span className="widget-label">{input.name}</span>
      <span className="widget-value">{text}</span>
    </div>
  );
}

function SocketRow({ input, output, errors, missing, still }: {
  input?: InputDecl;
  output?: OutputDecl;
  errors: string[];
  missing: boolean;
  still: boolean;
}) {
  return (
    <div className="socket-row-wrap">
      <div className={`socket-row${errors.length ? " invalid" : ""}${missing ? " missing" : ""}`}>
        {input ? (
          <div className="socket-label in" data-testid={`input-${input.name}`} title={input.tooltip}>
            <Socket kind="in" name={input.name} type={input.type} still={still} />
            <span className="socket-name">{input.name}</span>
            {input.required === false && <span className="optional">?</span>}
            {missing && <span className="missing-mark" data-testid={`missing-${input.name}`} title="This input needs a link" />}
          </div>
        ) : (
          <div />
        )}
        {output && (
          <div className="socket-label out" data-testid={`output-${output.name}`} title={output.tooltip}>
            <span className="socket-name">{output.name}</span>
            <Socket kind="out" name={output.name} type={output.type} still={still} />
          </div>
        )}
      </div>
      {input && <InputMessages name={input.name} messages={errors} />}
    </div>
  );
}

function GraphNodeView({ id, data, selected }: NodeProps<GraphNodeType>) {
  const far = useStore(zoomStore, (s) => s.level !== "near");
  const catalog = useStore(catalogStore, (s) => s.catalog);
  const dynamicChoices = useStore(catalogStore, (s) => s.dynamicChoices);
  const linked = useStore(graphStore, (s) => linkedInputsKey(s.edges, id));
  const inSubgraph = useStore(graphStore, (s) => s.stack.length > 0);
  // Run state is keyed by the node's path from the workflow's level ("5/2" inside subgraph node 5).
  const path = useStore(graphStore, (s) => levelPrefix(s.stack)) + id;
  const executing = useStore(runStore, (s) => s.executing === path || !!s.executing?.startsWith(path + "/"));
  const progress = useStore(runStore, (s) => s.progress[s.executing === path || s.executing?.startsWith(path + "/") ? s.executing : path]);
  const cached = useStore(runStore, (s) => s.cached[path] === true);
  const errors = useStore(runStore, (s) => s.errors[path]) ?? NO_ERRORS;
  const renaming = useStore(uiStore, (s) => s.renaming === id);

  const decl = declOf(catalog, data);
  if (!decl || !catalog) return null;
  const linkedInputs = new Set(linked ? linked.split("\u0000") : []);
  const linkable = linkableValueTypes(catalog);
  const socketInputs = decl.inputs.filter((i) => isSocketInput(catalog, i) || linkedInputs.has(i.name));
  const widgetInputs = decl.inputs.filter((i) => !isSocketInput(catalog, i) && !linkedInputs.has(i.name));
  const rows = Math.max(socketInputs.length, decl.outputs.length);
  const imageInput = decl.inputs.find((i) => i.image_upload && !linkedInputs.has(i.name));
  const title = data.title || displayName(decl);
  const hasErrors = errors.node.length > 0 || Object.keys(errors.inputs).length > 0;
  const missing = new Set(missingLinks({ id, data } as GraphNodeType, linkedInputs));
  const isSubgraph = !!data.subgraphDecl;

  const classes = [
    "lg-node",
    selected && "selected",
    executing && "executing",
    hasErrors && "has-error",
    missing.size > 0 && "incomplete",
    data.mode !== "active" && data.mode,
    data.missingDecl && "missing-type",
    decl.output_node && "output-node",
    isSubgraph && "subgraph-node",
    data.collapsed && "collapsed",
    data.color && "colored",
    far && "far",
  ]
    .filter(Boolean)
    .join(" ");

  const onDrop = async (event: DragEvent) => {
    const file = event.dataTransfer.files?.[0];
    if (!imageInput || !file || !file.type.startsWith("image/")) return;
    event.preventDefault();
    event.stopPropagation();
    const name = await uploadInputImage(file);
    if (name) setValue(id, imageInput.name, name);
  };

  const widgetProblem = (input: InputDecl): string[] => {
    const server = errors.inputs[input.name] ?? [];
    if (server.length) return server;
    const local = checkValue(input, data.values[input.name], dynamicChoices);
    return local ? [local] : [];
  };

  const width = data.size?.[0] ?? (decl.inputs.some((i) => i.multiline) ? 320 : widgetInputs.length || decl.output_node ? 270 : 210);
  const minHeight = data.collapsed ? undefined : data.size?.[1] || undefined;
  const style: Record<string, string | number | undefined> = { width: data.collapsed ? undefined : width, minHeight };
  if (data.color) style["--node-color"] = data.color;

  const header = (
    <div className="lg-node-header" title={decl.description}>
      {renaming ? (
        <input
          className="title-input nodrag"
          autoFocus
          defaultValue={title}
          onFocus={(e) => e.currentTarget.select()}
          onBlur={(e) => {
            setTitle(id, e.target.value === displayName(decl) ? "" : e.target.value);
            startRenaming(null);
          }}
          onKeyDown={(e) => {
            if (e.key === "Enter") e.currentTarget.blur();
            if (e.key === "Escape") startRenaming(null);
          }}
        />
      ) : (
        <span className="lg-node-title" data-testid="node-title" onDoubleClick={() => startRenaming(id)}>
          {title}
        </span>
      )}
      {data.pinned && <span className="pin-mark" data-testid="node-pinned" title="Pinned: cannot be moved" />}
      {data.mode !== "active" && <span className="badge mode-badge">{data.mode}</span>}
      {cached && (
        <span className="badge cached-badge" data-testid="node-cached" title="Result reused from the cache">
          cached
        </span>
      )}
      {isSubgraph && !far && (
        <button type="button" className="small open-subgraph nodrag" data-testid="open-subgraph" title="Open the subgraph to edit it" onClick={() => openSubgraph(id)}>
          open
        </button>
      )}
      <span className="node-id">#{id}</span>
    </div>
  );

  if (data.collapsed) {
    // Wires still reach a collapsed node: its sockets sit, invisible, on the title bar.
    return (
      <div className={classes} style={style} data-testid={`node-${id}`} data-node-type={data.type} data-mode={data.mode}>
        {header}
        {decl.inputs.filter((i) => isSocketInput(catalog, i) || linkedInputs.has(i.name)).map((i) => (
          <Socket key={`in-${i.name}`} kind="in" name={i.name} type={i.type} hidden still={far} />
        ))}
        {decl.outputs.map((o) => (
          <Socket key={`out-${o.name}`} kind="out" name={o.name} type={o.type} hidden still={far} />
        ))}
      </div>
    );
  }

  return (
    <div
      className={classes}
      style={style}
      data-testid={`node-${id}`}
      data-node-type={data.type}
      data-mode={data.mode}
      onDragOver={imageInput ? (e) => e.preventDefault() : undefined}
      onDrop={imageInput ? onDrop : undefined}
    >
      {header}
      {progress && (
        <div className="node-progress" data-testid="node-progress" title={`${progress.step} / ${progress.total}`}>
          <div style={{ width: `${Math.round((100 * progress.step) / Math.max(progress.total, 1))}%` }} />
        </div>
      )}
      {data.missingDecl && <div className="node-error">Unknown node type “{data.type}”</div>}
      {errors.node.length > 0 && (
        <div className="node-error" data-testid="node-error">
          {errors.node.map((m, i) => (
            <div key={i}>{m}</div>
          ))}
        </div>
      )}
      <div className="lg-node-body">
        {Array.from({ length: rows }, (_, i) => {
          const input = socketInputs[i];
          return (
            <SocketRow
              key={i}
              input={input}
              output={decl.outputs[i]}
              errors={input ? errors.inputs[input.name] ?? [] : []}
              missing={!!input && missing.has(input.name)}
              still={far}
            />
          );
        })}
        {widgetInputs.map((input) => {
          const socket = (inSubgraph || linkable.has(input.type)) && <Socket kind="in" name={input.name} type={input.type} still={far} />;
          if (far && !input.image_upload) {
            // Same height as the widgets, so sockets (and wires) stay where they were.
            return (
              <div className="widget-row" key={input.name} data-testid={`input-${input.name}`}>
                {socket}
                <WidgetText input={input} value={data.values[input.name]} />
                {input.control_after_generate && (
                  <WidgetText input={{ name: "control after generate", type: "COMBO" }} value={data.control[input.name] ?? "fixed"} />
                )}
              </div>
            );
          }
          const problems = widgetProblem(input);
          const control = data.control[input.name];
          return (
            <div className="widget-row" key={input.name} data-testid={`input-${input.name}`}>
              {socket}
              <Widget
                input={input}
                value={data.values[input.name]}
                dynamicChoices={dynamicChoices}
                invalid={problems.length > 0}
                onChange={(value) => setValue(id, input.name, value)}
              />
              {input.control_after_generate && (
                <ControlWidget name={input.name} mode={control ?? "fixed"} onChange={(m) => setControl(id, input.name, m)} />
              )}
              <InputMessages name={input.name} messages={problems} />
            </div>
          );
        })}
        <NodeImages path={path} inner={isSubgraph} />
      </div>
      {selected && !far && !data.pinned && (
        <NodeResizeControl
          className="resize-corner"
          position="bottom-right"
          minWidth={180}
          minHeight={40}
          onResizeStart={() => commit()}
          onResize={(_, p) => setSize(id, [p.width, p.height])}
        />
      )}
    </div>
  );
}

export const GraphNode = memo(GraphNodeView);
