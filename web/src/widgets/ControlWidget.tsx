// "control after generate" of a seed-like input: what happens to the value after each run.
import type { ControlAfterGenerate } from "../types";

const MODES: ControlAfterGenerate[] = ["fixed", "increment", "decrement", "randomize"];

interface Props {
  name: string;
  mode: ControlAfterGenerate;
  onChange: (mode: ControlAfterGenerate) => void;
}

export function ControlWidget({ name, mode, onChange }: Props) {
  return (
    <label className="widget combo-widget control-widget nodrag" data-testid={`control-${name}`}>
      <span className="widget-label">control after generate</span>
      <select value={mode} onChange={(e) => onChange(e.target.value as ControlAfterGenerate)}>
        {MODES.map((m) => (
          <option key={m} value={m}>
            {m}
          </option>
        ))}
      </select>
    </label>
  );
}
