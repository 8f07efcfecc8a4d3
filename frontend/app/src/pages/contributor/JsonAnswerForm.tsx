// A JSON transcription answered in a form drawn from the project's JSON Schema (react-jsonschema-form),
// not typed as raw JSON. Loaded only for such tasks: the form library is most of its weight.
// Its checks follow draft 2020-12, the dialect projects' schemas are written in; the service
// checks the answer again and its refusal is shown.
import Form from "@rjsf/core";
import type { RJSFSchema } from "@rjsf/utils";
import { customizeValidator } from "@rjsf/validator-ajv8";
import Ajv2020 from "ajv/dist/2020";
import { useState, type KeyboardEvent } from "react";

const validator = customizeValidator({ AjvClass: Ajv2020 });

export default function JsonAnswerForm({
  schema,
  busy,
  saving,
  onSubmit,
}: {
  schema: RJSFSchema;
  busy: boolean;
  saving: boolean;
  onSubmit: (data: unknown) => void;
}) {
  const [data, setData] = useState<unknown>(undefined);
  // Ctrl+Enter submits from any field, as everywhere in the loop.
  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      e.currentTarget.querySelector("form")?.requestSubmit();
    }
  };
  return (
    <div onKeyDown={onKeyDown}>
    <Form
      className="json-answer"
      schema={schema}
      validator={validator}
      formData={data}
      showErrorList="top"
      noHtml5Validate
      onChange={(e) => setData(e.formData)}
      onSubmit={(e) => onSubmit(e.formData)}
    >
      <button type="submit" className="primary big" disabled={busy}>
        {saving ? "Saving…" : "Submit"}
      </button>
    </Form>
    </div>
  );
}
