// STRING widget: a textarea for multiline prompts, a one-line field otherwise.
import type { InputDecl } from "../types";

interface Props {
  input: InputDecl;
  value: string;
  invalid: boolean;
  onChange: (value: string) => void;
}

export function TextWidget({ input, value, invalid, onChange }: Props) {
  if (input.multiline) {
    return (
      <textarea
        className={`widget text-widget multiline nodrag nowheel${invalid ? " invalid" : ""}`}
        data-testid={`widget-${input.name}`}
        placeholder={input.name}
        title={input.tooltip}
        value={value}
        spellCheck={false}
        onChange={(e) => onChange(e.target.value)}
      />
    );
  }
  return (
    <label className={`widget text-widget nodrag${invalid ? " invalid" : ""}`} data-testid={`widget-${input.name}`}>
      <span className="widget-label" title={input.tooltip}>
        {input.name}
      </span>
      <input value={value} spellCheck={false} onChange={(e) => onChange(e.target.value)} />
    </label>
  );
}
