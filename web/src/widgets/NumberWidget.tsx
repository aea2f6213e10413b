// INT and FLOAT widgets: a dense field with step arrows, like ComfyUI's. Values typed outside
// min/max are kept (and flagged) rather than silently clamped, so the user sees the problem.
import { useEffect, useState } from "react";
import type { InputDecl } from "../types";

interface Props {
  input: InputDecl;
  value: number;
  invalid: boolean;
  onChange: (value: number) => void;
}

/** Decimal places to show for a FLOAT: from `round`, else from `step`. */
function decimals(input: InputDecl): number {
  if (input.type === "INT") return 0;
  const unit = input.round ?? input.step ?? 0.01;
  const text = String(unit);
  if (text.includes("e-")) return Number(text.split("e-")[1]);
  return text.includes(".") ? text.split(".")[1].length : 0;
}

export function formatNumber(input: InputDecl, value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return input.type === "INT" ? String(value) : value.toFixed(decimals(input));
}

function normalise(input: InputDecl, value: number): number {
  if (input.type === "INT") return Math.round(value);
  const unit = input.round;
  if (unit && unit > 0) return Number((Math.round(value / unit) * unit).toFixed(decimals(input)));
  return value;
}

function clamp(input: InputDecl, value: number): number {
  if (input.min !== undefined && value < input.min) return input.min;
  if (input.max !== undefined && value > input.max) return input.max;
  return value;
}

export function NumberWidget({ input, value, invalid, onChange }: Props) {
  const [text, setText] = useState(formatNumber(input, value));
  const [editing, setEditing] = useState(false);
  useEffect(() => {
    if (!editing) setText(formatNumber(input, value));
  }, [value, editing, input]);

  const step = input.step && input.step > 0 ? input.step : input.type === "INT" ? 1 : 0.1;
  const commitText = () => {
    setEditing(false);
    const parsed = Number(text.trim());
    if (text.trim() === "" || !Number.isFinite(parsed)) {
      setText(formatNumber(input, value));
      return;
    }
    onChange(normalise(input, parsed));
  };
  const nudge = (direction: 1 | -1) => onChange(clamp(input, normalise(input, value + direction * step)));

  return (
    <div className={`widget number-widget nodrag${invalid ? " invalid" : ""}`} data-testid={`widget-${input.name}`}>
      <button type="button" className="arrow" tabIndex={-1} onClick={() => nudge(-1)} aria-label="decrease">
        ‹
      </button>
      <span className="widget-label" title={input.tooltip}>
        {input.name}
      </span>
      <input
        className="number-input"
        inputMode="decimal"
        value={text}
        onFocus={(e) => {
          setEditing(true);
          e.currentTarget.select();
        }}
        onChange={(e) => setText(e.target.value)}
        onBlur={commitText}
        onKeyDown={(e) => {
          if (e.key === "Enter") e.currentTarget.blur();
          if (e.key === "Escape") {
            setText(formatNumber(input, value));
            setEditing(false);
            e.currentTarget.blur();
          }
          if (e.key === "ArrowUp" || e.key === "ArrowDown") {
            e.preventDefault();
            nudge(e.key === "ArrowUp" ? 1 : -1);
          }
        }}
      />
      <button type="button" className="arrow" tabIndex={-1} onClick={() => nudge(1)} aria-label="increase">
        ›
      </button>
    </div>
  );
}
