/**
 * Environment overrides: `MINOS_` + the upper-cased key path (`rest.port` → `MINOS_REST_PORT`),
 * converted to the leaf's type before the document is validated, so a bad value is reported
 * with the same key path as a bad value in the file.
 */
import type { Leaf } from "./schemaLeaves.ts"

export interface Override {
  readonly path: ReadonlyArray<string>
  readonly variable: string
  readonly value: unknown
}

export interface OverrideFailure {
  readonly path: ReadonlyArray<string>
  readonly variable: string
  readonly message: string
}

export const variableName = (path: ReadonlyArray<string>): string =>
  "MINOS_" + path.map((p) => p.replace(/[^A-Za-z0-9]/g, "_").toUpperCase()).join("_")

const convert = (leaf: Leaf, raw: string): { ok: true; value: unknown } | { ok: false; message: string } => {
  switch (leaf.kind) {
    case "string":
      return { ok: true, value: raw }
    case "number": {
      const trimmed = raw.trim()
      const n = Number(trimmed)
      return trimmed !== "" && Number.isFinite(n)
        ? { ok: true, value: n }
        : { ok: false, message: `Expected a number, got ${JSON.stringify(raw)}` }
    }
    case "boolean": {
      const v = raw.trim().toLowerCase()
      if (["true", "1", "yes", "on"].includes(v)) return { ok: true, value: true }
      if (["false", "0", "no", "off"].includes(v)) return { ok: true, value: false }
      return { ok: false, message: `Expected a boolean (true/false), got ${JSON.stringify(raw)}` }
    }
    case "string-list":
      return { ok: true, value: raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0) }
  }
}

/**
 * Collects the overrides present in `env` for the given leaves. `aliases` maps extra variable
 * names (e.g. minos v1's fixed names) to leaf paths.
 */
export const collect = (
  leaves: ReadonlyArray<Leaf>,
  env: Readonly<Record<string, string | undefined>>,
  aliases: Readonly<Record<string, ReadonlyArray<string>>> = {}
): { readonly overrides: ReadonlyArray<Override>; readonly failures: ReadonlyArray<OverrideFailure> } => {
  const overrides: Array<Override> = []
  const failures: Array<OverrideFailure> = []
  const byPath = new Map(leaves.map((l) => [l.path.join("."), l]))
  const candidates: Array<[string, Leaf]> = leaves.map((l) => [variableName(l.path), l])
  for (const [variable, path] of Object.entries(aliases)) {
    const leaf = byPath.get(path.join("."))
    if (leaf !== undefined) candidates.push([variable, leaf])
  }
  for (const [variable, leaf] of candidates) {
    const raw = env[variable]
    // an exported-but-empty variable counts as unset, as most shells make that easy to do by accident
    if (raw === undefined || raw === "") continue
    const converted = convert(leaf, raw)
    if (converted.ok) overrides.push({ path: leaf.path, variable, value: converted.value })
    else failures.push({ path: leaf.path, variable, message: converted.message })
  }
  return { overrides, failures }
}

/** Returns a copy of `doc` with the overrides written in (intermediate objects are created). */
export const apply = (doc: Record<string, unknown>, overrides: ReadonlyArray<Override>): Record<string, unknown> => {
  const root: Record<string, unknown> = structuredClone(doc)
  for (const { path, value } of overrides) {
    let node = root
    for (const key of path.slice(0, -1)) {
      const next = node[key]
      if (next === null || typeof next !== "object" || Array.isArray(next)) node[key] = {}
      node = node[key] as Record<string, unknown>
    }
    node[path[path.length - 1]!] = value
  }
  return root
}
