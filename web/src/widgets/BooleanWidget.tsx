// BOOLEAN widget: a toggle.
import type { InputDecl } from "../types";

interface Props {
  input: InputDecl;
  value: boolean;
  onChange: (value: boolean) => void;
}

export function BooleanWidget({ input, value, onChange }: Props) {
  return (
    <label className="widget boolean-widget nodrag" data-testid={`widget-${input.name}`}>
      <span className="widget-label" title={input.tooltip}>
        {input.name}
      </span>
      <span className="toggle-text">{value ? "true" : "false"}</span>
      <input type="checkbox" checked={value} onChange={(e) => onChange(e.target.checked)} />
      <span className="toggle" aria-hidden />
    </label>
  );
}
