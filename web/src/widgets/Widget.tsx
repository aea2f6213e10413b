// Picks the widget for a value input from its declaration.
import { choicesFor } from "../catalog";
import type { Constant, InputDecl } from "../types";
import { BooleanWidget } from "./BooleanWidget";
import { ComboWidget } from "./ComboWidget";
import { ImageUploadWidget } from "./ImageUploadWidget";
import { NumberWidget } from "./NumberWidget";
import { TextWidget } from "./TextWidget";

interface Props {
  input: InputDecl;
  value: Constant | undefined;
  dynamicChoices: Record<string, string[]>;
  invalid: boolean;
  onChange: (value: Constant) => void;
}

export function Widget({ input, value, dynamicChoices, invalid, onChange }: Props) {
  switch (input.type) {
    case "INT":
    case "FLOAT":
      return <NumberWidget input={input} value={typeof value === "number" ? value : Number(value ?? 0)} invalid={invalid} onChange={onChange} />;
    case "BOOLEAN":
      return <BooleanWidget input={input} value={value === true} onChange={onChange} />;
    case "COMBO": {
      const choices = choicesFor(input, dynamicChoices);
      const text = value === undefined ? "" : String(value);
      if (input.image_upload) {
        return <ImageUploadWidget input={input} value={text} choices={choices} invalid={invalid} onChange={onChange} />;
      }
      return <ComboWidget input={input} value={text} choices={choices} invalid={invalid} onChange={onChange} />;
    }
    default:
      return <TextWidget input={input} value={value === undefined ? "" : String(value)} invalid={invalid} onChange={onChange} />;
  }
}
