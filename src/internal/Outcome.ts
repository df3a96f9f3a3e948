/** How a handler's failure is reported, shared by the broker dispatcher and the HTTP server. */
import { Cause, Schema, SchemaIssue } from "effect"

/** A typed error as plain JSON: `_tag`, `message` and its own data fields (no cause, no stack). */
export const errorBody = (error: unknown): Record<string, unknown> => {
  if (typeof error !== "object" || error === null) return { _tag: "Error", message: String(error) }
  const out: Record<string, unknown> = {}
  const tag = (error as { _tag?: unknown })._tag
  out["_tag"] = typeof tag === "string" ? tag : "Error"
  out["message"] = String((error as { message?: unknown }).message ?? "")
  for (const [k, v] of Object.entries(error)) {
    if (k === "cause" || k === "stack" || k === "_tag" || k === "message") continue
    if (v === null || ["string", "number", "boolean"].includes(typeof v)) out[k] = v
    else if (Array.isArray(v) || (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype)) out[k] = JSON.parse(JSON.stringify(v))
  }
  return out
}

/** The first problems of a Schema decode, with dotted paths. */
export const schemaIssues = (error: Schema.SchemaError): ReadonlyArray<{ readonly path: string; readonly message: string }> =>
  SchemaIssue.makeFormatterStandardSchemaV1()(error.issue).issues.map((i) => ({
    path: (i.path ?? []).map((p) => (typeof p === "object" && p !== null && "key" in p ? String((p as { key: PropertyKey }).key) : String(p))).join("."),
    message: i.message
  }))

/** One line for a log or a dead letter: the failure, never a stack trace. */
export const describeCause = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.findErrorOption(cause)
  if (failure._tag === "Some") {
    const e = failure.value as { _tag?: string; message?: string }
    return `${e?._tag ?? "Error"}: ${e?.message ?? String(failure.value)}`
  }
  const defect = Cause.squash(cause) as { name?: string; message?: string }
  return Cause.hasInterruptsOnly(cause) ? "Interrupted" : `Defect: ${defect?.name ?? "Error"}: ${defect?.message ?? String(defect)}`
}
