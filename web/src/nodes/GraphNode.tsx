// One node on the canvas, drawn from its catalog declaration: sockets, widgets, run state, images.
import { Handle, NodeResizeControl, Position, type NodeProps } from "@xyflow/react";
import { memo, type DragEvent } from "react";
import { catalogStore, displayName, isSocketInput, linkableValueTypes, typeColor } from "../catalog";
import { commit, graphStore, setControl, setSize, setTitle, setValue } from "../editor/graphStore";
import { runStore } from "../editor/runState";
import { startRenaming, uiStore } from "../editor/uiState";
import { checkValue, declOf, type GraphNode as GraphNodeType } from "../graphModel";
import { useStore } from "../store";
import type { InputDecl } from "../types";
import { ControlWidget } from "../widgets/ControlWidget";
import { uploadInputImage } from "../widgets/ImageUploadWidget";
import { Widget } from "../widgets/Widget";
import { NodeImages } from "./NodeImages";

const NO_ERRORS = { node: [] as string[], inputs: {} as Record<string, string[]> };

function Socket({ kind, name, type }: { kind: "in" | "out"; name: string; type: string }) {
  return (
    <Handle
      type={kind === "in" ? "target" : "source"}
      position={kind === "in" ? Position.Left : Position.Right}
      id={name}
      className="socket"
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

function GraphNodeView({ id, data, selected }: NodeProps<GraphNodeType>) {
  const catalog = useStore(catalogStore, (s) => s.catalog);
  const dynamicChoices = useStore(catalogStore, (s) => s.dynamicChoices);
  const linked = useStore(graphStore, (s) =>
    s.edges
      .filter((e) => e.target === id)
      .map((e) => e.targetHandle)
      .join("\u0000"),
  );
  const executing = useStore(runStore, (s) => s.executing === id);
  const progress = useStore(runStore, (s) => s.progress[id]);
  const cached = useStore(runStore, (s) => s.cached[id] === true);
  const errors = useStore(runStore, (s) => s.errors[id]) ?? NO_ERRORS;
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

  const classes = [
    "lg-node",
    selected && "selected",
    executing && "executing",
    hasErrors && "has-error",
    data.mode !== "active" && data.mode,
    data.missingDecl && "missing-type",
    decl.output_node && "output-node",
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
  const minHeight = data.size?.[1] || undefined;

  return (
    <div
      className={classes}
      style={{ width, minHeight }}
      data-testid={`node-${id}`}
      data-node-type={data.type}
      data-mode={data.mode}
      onDragOver={imageInput ? (e) => e.preventDefault() : undefined}
      onDrop={imageInput ? onDrop : undefined}
    >
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
        {data.mode !== "active" && <span className="badge mode-badge">{data.mode}</span>}
        {cached && (
          <span className="badge cached-badge" data-testid="node-cached" title="Result reused from the cache">
            cached
          </span>
        )}
        <span className="node-id">#{id}</span>
      </div>
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
          const output = decl.outputs[i];
          const inputErrors = input ? errors.inputs[input.name] ?? [] : [];
          return (
            <div className="socket-row-wrap" key={i}>
              <div className={`socket-row${inputErrors.length ? " invalid" : ""}`}>
                {input ? (
                  <div className="socket-label in" data-testid={`input-${input.name}`} title={input.tooltip}>
                    <Socket kind="in" name={input.name} type={input.type} />
                    {input.name}
                    {input.required === false && <span className="optional">?</span>}
                  </div>
                ) : (
                  <div />
                )}
                {output && (
                  <div className="socket-label out" data-testid={`output-${output.name}`} title={output.tooltip}>
                    {output.name}
                    <Socket kind="out" name={output.name} type={output.type} />
                  </div>
                )}
              </div>
              {input && <InputMessages name={input.name} messages={inputErrors} />}
            </div>
          );
        })}
        {widgetInputs.map((input) => {
          const problems = widgetProblem(input);
          const control = data.control[input.name];
          return (
            <div className="widget-row" key={input.name} data-testid={`input-${input.name}`}>
              {linkable.has(input.type) && <Socket kind="in" name={input.name} type={input.type} />}
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
        <NodeImages nodeId={id} />
      </div>
      <NodeResizeControl
        className="resize-corner"
        position="bottom-right"
        minWidth={180}
        minHeight={40}
        onResizeStart={() => commit()}
        onResize={(_, p) => setSize(id, [p.width, p.height])}
      />
    </div>
  );
}

export const GraphNode = memo(GraphNodeView);
