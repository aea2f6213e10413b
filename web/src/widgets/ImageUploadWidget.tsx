// An input-image chooser with an upload button, a thumbnail of the chosen image and its mask editor.
import { useRef, useState } from "react";
import { api } from "../api";
import { refreshChoices } from "../catalog";
import { toast } from "../editor/uiState";
import type { InputDecl } from "../types";
import { ComboWidget } from "./ComboWidget";
import { MaskEditor } from "./MaskEditor";

/** Upload an image into the server's input folder; returns the stored name. */
export async function uploadInputImage(file: File): Promise<string | null> {
  try {
    const { name } = await api.upload(file, file.name);
    await refreshChoices();
    return name;
  } catch (err) {
    toast("error", `Upload failed: ${err instanceof Error ? err.message : String(err)}`);
    return null;
  }
}

interface Props {
  input: InputDecl;
  value: string;
  choices: string[];
  invalid: boolean;
  onChange: (value: string) => void;
}

export function ImageUploadWidget({ input, value, choices, invalid, onChange }: Props) {
  const fileInput = useRef<HTMLInputElement>(null);
  const [busy, setBusy] = useState(false);
  const [editingMask, setEditingMask] = useState(false);
  const upload = async (file: File | undefined) => {
    if (!file) return false;
    setBusy(true);
    const name = await uploadInputImage(file);
    setBusy(false);
    if (name) onChange(name);
    return name !== null;
  };
  const shown = value !== "" && choices.includes(value);
  return (
    <div className="image-upload">
      <ComboWidget input={input} value={value} choices={choices} invalid={invalid} onChange={onChange} />
      <button
        type="button"
        className="widget upload-button nodrag"
        data-testid={`upload-${input.name}`}
        disabled={busy}
        onClick={() => fileInput.current?.click()}
      >
        {busy ? "uploading…" : "choose file to upload"}
      </button>
      <input
        ref={fileInput}
        type="file"
        accept="image/*"
        hidden
        data-testid={`upload-input-${input.name}`}
        onChange={(e) => {
          void upload(e.target.files?.[0]);
          e.target.value = "";
        }}
      />
      {shown && (
        <button
          type="button"
          className="widget upload-button nodrag"
          data-testid={`edit-mask-${input.name}`}
          disabled={busy}
          onClick={() => setEditingMask(true)}
        >
          edit mask
        </button>
      )}
      {shown && (
        <img
          className="input-thumbnail"
          data-testid="input-thumbnail"
          src={api.inputImageUrl(value)}
          alt=""
          draggable={false}
          onError={(e) => (e.currentTarget.style.display = "none")}
          onLoad={(e) => (e.currentTarget.style.display = "")}
        />
      )}
      {editingMask && <MaskEditor image={value} onSave={upload} onClose={() => setEditingMask(false)} />}
    </div>
  );
}
