// COMBO widget: a choice list. A value missing from the list (e.g. a checkpoint that is not
// installed) stays selected and is flagged rather than replaced.
import type { InputDecl } from "../types";

interface Props {
  input: InputDecl;
  value: string;
  choices: string[];
  invalid: boolean;
  onChange: (value: string) => void;
}

export function ComboWidget({ input, value, choices, invalid, onChange }: Props) {
  const missing = value !== "" && !choices.includes(value);
  return (
    <label className={`widget combo-widget nodrag${invalid || missing ? " invalid" : ""}`} data-testid={`widget-${input.name}`}>
      <span className="widget-label" title={input.tooltip}>
        {input.name}
      </span>
      <select value={value} onChange={(e) => onChange(e.target.value)}>
        {missing && <option value={value}>{value} (missing)</option>}
        {!choices.length && !value && <option value="">(none)</option>}
        {choices.map((choice) => (
          <option key={choice} value={choice}>
            {choice}
          </option>
        ))}
      </select>
    </label>
  );
}
