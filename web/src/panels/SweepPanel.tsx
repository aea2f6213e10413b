// The sweep panel: axes of input values (zipped within an axis, crossed across axes), a repeat count
// with seed increment, the job count, Run sweep, its progress and cancel, and the grid at the end.
import { useMemo } from "react";
import { mediaUrl } from "../api";
import { catalogStore, choicesFor } from "../catalog";
import { graphStore } from "../editor/graphStore";
import { rootWorkflow } from "../editor/subgraphs";
import {
  addAxis,
  axisSize,
  cancelSweep,
  currentDraft,
  type DraftAxis,
  type DraftTarget,
  jobCount,
  newTarget,
  runSweep,
  sweepStore,
  targetDecl,
  targetGroups,
  targetValues,
  updateDraft,
} from "../editor/sweep";
import { openViewer } from "../editor/uiState";
import { useStore } from "../store";
import type { SweepError, Workflow } from "../types";
import { PanelClose } from "./QueuePanel";

const AXIS_NAMES = ["X", "Y"];
const MAX_CHIPS = 60;

function changeAxis(a: number, change: (axis: DraftAxis) => DraftAxis | null): void {
  updateDraft((d) => ({ ...d, axes: d.axes.flatMap((axis, i) => (i !== a ? [axis] : (change(axis) ?? []) as DraftAxis[])) }));
}

function changeTarget(a: number, k: number, change: Partial<DraftTarget> | null): void {
  changeAxis(a, (axis) => {
    const targets = axis.targets.flatMap((t, i) => (i !== k ? [t] : change ? [{ ...t, ...change }] : []));
    return targets.length ? { ...axis, targets, labels: undefined } : null;
  });
}

function Errors({ errors, testId }: { errors: SweepError[]; testId: string }) {
  if (!errors.length) return null;
  return (
    <>
      {errors.map((e, i) => (
        <div key={i} className="job-error" data-testid={testId} data-value={e.value ?? ""}>
          {e.message}
        </div>
      ))}
    </>
  );
}

function TargetEditor({ a, k, target, workflow, errors }: { a: number; k: number; target: DraftTarget; workflow: Workflow; errors: SweepError[] }) {
  const dynamicChoices = useStore(catalogStore, (s) => s.dynamicChoices);
  const groups = useMemo(() => targetGroups(workflow), [workflow]);
  const decl = targetDecl(target.input, workflow);
  const values = targetValues(target, decl);
  const bad = new Map(errors.filter((e) => e.value !== null && e.value !== undefined).map((e) => [e.value as number, e.message]));
  const known = groups.some((g) => g.inputs.some((i) => `${g.nodeId}.${i.name}` === target.input));
  const id = `${a}-${k}`;

  let editor;
  if (decl?.type === "COMBO" || decl?.type === "BOOLEAN") {
    const choices = decl.type === "BOOLEAN" ? ["true", "false"] : choicesFor(decl, dynamicChoices);
    const toggle = (choice: string, on: boolean) =>
      changeTarget(a, k, { picked: on ? choices.filter((c) => c === choice || target.picked.includes(c)) : target.picked.filter((c) => c !== choice) });
    editor = (
      <div className="sweep-choices" data-testid={`sweep-choices-${id}`}>
        <div className="sweep-choice-actions">
          <button type="button" className="small" data-testid={`sweep-all-${id}`} onClick={() => changeTarget(a, k, { picked: [...choices] })}>
            all
          </button>
          <button type="button" className="small" onClick={() => changeTarget(a, k, { picked: [] })}>
            none
          </button>
        </div>
        {[...choices, ...target.picked.filter((p) => !choices.includes(p))].map((choice) => (
          <label key={choice} className={!choices.includes(choice) ? "bad" : ""}>
            <input
              type="checkbox"
              checked={target.picked.includes(choice)}
              data-testid={`sweep-choice-${id}-${choice}`}
              onChange={(e) => toggle(choice, e.target.checked)}
            />
            {choice}
          </label>
        ))}
      </div>
    );
  } else {
    const text = decl?.type === "INT" || decl?.type === "FLOAT";
    editor = (
      <textarea
        className="sweep-values"
        rows={text ? 2 : 3}
        value={target.text}
        placeholder={text ? "1, 2, 3 or 1..8 or 4..8:2" : "one value per line"}
        data-testid={`sweep-values-${id}`}
        onChange={(e) => changeTarget(a, k, { text: e.target.value })}
      />
    );
  }

  return (
    <div className="sweep-target" data-testid={`sweep-target-row-${id}`}>
      <div className="job-line">
        <select
          className="sweep-input"
          value={target.input}
          data-testid={`sweep-target-${id}`}
          onChange={(e) => changeTarget(a, k, newTarget(e.target.value, workflow))}
        >
          <option value="">pick an input…</option>
          {!known && target.input && <option value={target.input}>{target.input} (not in the graph)</option>}
          {groups.map((g) => (
            <optgroup key={g.nodeId} label={g.label}>
              {g.inputs.map((i) => (
                <option key={i.name} value={`${g.nodeId}.${i.name}`}>
                  {i.name} · #{g.nodeId}
                </option>
              ))}
            </optgroup>
          ))}
        </select>
        <button type="button" className="small" title="Remove this input from the axis" data-testid={`sweep-target-remove-${id}`} onClick={() => changeTarget(a, k, null)}>
          ×
        </button>
      </div>
      {target.input && editor}
      {values.length > 0 && (
        <div className="sweep-chips">
          {values.slice(0, MAX_CHIPS).map((v, i) => (
            <span key={i} className={`sweep-value${bad.has(i) ? " bad" : ""}`} title={bad.get(i)} data-testid={`sweep-value-${id}-${i}`}>
              {String(v) === "" ? "(empty)" : String(v)}
            </span>
          ))}
          {values.length > MAX_CHIPS && <span className="sweep-value more">+{values.length - MAX_CHIPS}</span>}
        </div>
      )}
      <Errors errors={errors} testId={`sweep-target-error-${id}`} />
    </div>
  );
}

function Axis({ a, axis, workflow, errors }: { a: number; axis: DraftAxis; workflow: Workflow; errors: SweepError[] }) {
  const size = axisSize(axis, workflow);
  const owner = (e: SweepError, t: DraftTarget) => e.node_id !== null && e.input !== null && `${e.node_id}.${e.input}` === t.input;
  const own = errors.filter((e) => !axis.targets.some((t) => owner(e, t)));
  return (
    <div className={`sweep-axis${errors.length ? " has-error" : ""}`} data-testid={`sweep-axis-${a}`}>
      <div className="job-line">
        <span className="sweep-axis-name">{AXIS_NAMES[a] ?? `Z${a - 1}`}</span>
        <input
          className="sweep-axis-label"
          value={axis.label ?? ""}
          placeholder="name on the grid"
          title="The axis name drawn on the grid (default: its inputs)"
          data-testid={`sweep-axis-label-${a}`}
          onChange={(e) => changeAxis(a, (x) => ({ ...x, label: e.target.value || undefined }))}
        />
        <span className="job-time" data-testid={`sweep-axis-size-${a}`}>
          {size} value{size === 1 ? "" : "s"}
        </span>
        <button type="button" className="small" title="Remove this axis" data-testid={`sweep-axis-remove-${a}`} onClick={() => changeAxis(a, () => null)}>
          remove
        </button>
      </div>
      {axis.targets.map((t, k) => (
        <TargetEditor key={k} a={a} k={k} target={t} workflow={workflow} errors={errors.filter((e) => owner(e, t))} />
      ))}
      <button
        type="button"
        className="small"
        title="Another input that takes its values together with this one (value k with value k)"
        data-testid={`sweep-add-input-${a}`}
        onClick={() => changeAxis(a, (x) => ({ ...x, targets: [...x.targets, { input: "", text: "", picked: [] }], labels: undefined }))}
      >
        + zipped input
      </button>
      <Errors errors={own} testId={`sweep-axis-error-${a}`} />
    </div>
  );
}

function Progress() {
  const run = useStore(sweepStore, (s) => s);
  if (!run.sweepId) return null;
  const active = run.status === "queued" || run.status === "running";
  const failed = Object.entries(run.counts).filter(([status]) => !["success", "pending", "running"].includes(status));
  return (
    <div className="sweep-run" data-testid="sweep-run-state" data-status={run.status}>
      <div className="job-line">
        <span className={`job-status ${active ? "running" : "success"}`}>{run.status}</span>
        <span data-testid="sweep-progress" data-done={run.done} data-total={run.total}>
          {run.done} / {run.total}
        </span>
        {active && (
          <button type="button" className="small danger" data-testid="sweep-cancel" onClick={() => void cancelSweep()}>
            cancel sweep
          </button>
        )}
      </div>
      <div className="node-progress wide">
        <div style={{ width: `${Math.round((100 * run.done) / Math.max(run.total, 1))}%` }} />
      </div>
      {failed.length > 0 && (
        <div className="job-error">{failed.map(([status, n]) => `${n} ${status}`).join(", ")}</div>
      )}
      {run.grid && (
        <img
          className="sweep-grid"
          src={mediaUrl(run.grid.url)}
          alt="the sweep's grid"
          title="Open full size"
          data-testid="sweep-grid"
          onClick={() => run.grid && openViewer([mediaUrl(run.grid.url)], 0)}
        />
      )}
    </div>
  );
}

export function SweepPanel() {
  const nodes = useStore(graphStore, (s) => s.nodes);
  const edges = useStore(graphStore, (s) => s.edges);
  const stack = useStore(graphStore, (s) => s.stack);
  const extraUi = useStore(graphStore, (s) => s.extraUi);
  const errors = useStore(sweepStore, (s) => s.errors);
  const sending = useStore(sweepStore, (s) => s.status === "sending");
  // The workflow's own level, also while a subgraph is open (sweeps name its nodes).
  const workflow = useMemo(() => rootWorkflow(), [nodes, edges, stack]);
  const draft = currentDraft(extraUi);
  const jobs = jobCount(draft, workflow);
  const general = errors.filter((e) => e.axis === null || e.axis === undefined || e.axis >= draft.axes.length);
  const tooMany = general.some((e) => e.kind === "too_many_jobs");

  return (
    <aside className="side-panel sweep-panel" data-testid="sweep-panel">
      <div className="panel-title">
        Sweep
        <span className="count" data-testid="sweep-job-count" title="jobs this sweep queues">
          {jobs}
        </span>
        <PanelClose />
      </div>
      <div className="panel-hint">Values within an axis go together; axes are crossed: every combination is one job.</div>
      {draft.axes.map((axis, a) => (
        <Axis key={a} a={a} axis={axis} workflow={workflow} errors={errors.filter((e) => e.axis === a)} />
      ))}
      <button type="button" className="small" data-testid="sweep-add-axis" onClick={() => addAxis()}>
        + axis
      </button>
      <div className="sweep-repeat">
        <label>
          repeat
          <input
            type="number"
            min={1}
            max={1000}
            value={draft.repeat}
            data-testid="sweep-repeat"
            title="Run every combination this many times, the seeds increased by 0, 1, 2…"
            onChange={(e) => updateDraft((d) => ({ ...d, repeat: Math.max(1, Math.min(1000, Math.round(Number(e.target.value) || 1))) }))}
          />
        </label>
        <span className="job-time">with seed +0…+{Math.max(draft.repeat - 1, 0)}</span>
      </div>
      {/* The workflow's own problems are also marked on its nodes, as for Run. */}
      <Errors errors={general} testId="sweep-error" />
      {tooMany && (
        <button type="button" className="small danger" data-testid="sweep-confirm" onClick={() => void runSweep(true)}>
          queue all {jobs} jobs anyway
        </button>
      )}
      <button type="button" className="primary sweep-run-button" data-testid="sweep-run" disabled={!jobs || sending} onClick={() => void runSweep()}>
        ▶ Run sweep ({jobs} job{jobs === 1 ? "" : "s"})
      </button>
      <Progress />
    </aside>
  );
}
