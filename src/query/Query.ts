/**
 * The `Condition` language's checks and evaluation, shared by the snapshot and read-model ports and
 * their backends: field-path validation against the document Schema (so nothing unchecked reaches
 * SQL) and an in-process evaluator with PostgreSQL jsonb semantics (LMDB backends).
 *
 * @since 0.1.0
 */
import { SchemaAST } from "effect"
import type { Condition, Ordering } from "./Condition.ts"
import { columns, fields } from "./Condition.ts"

const segmentPattern = /^[A-Za-z_$][A-Za-z0-9_$-]*$/

type PathCheck = { readonly ok: true; readonly segments: ReadonlyArray<string> } | { readonly ok: false; readonly message: string }

const walk = (ast: SchemaAST.AST, segment: string): ReadonlyArray<SchemaAST.AST> => {
  switch (ast._tag) {
    case "Objects": {
      const out: Array<SchemaAST.AST> = []
      for (const ps of ast.propertySignatures) if (ps.name === segment) out.push(ps.type)
      if (out.length === 0) {
        for (const index of ast.indexSignatures) {
          if (index.parameter._tag === "String" || index.parameter._tag === "TemplateLiteral") out.push(index.type)
        }
      }
      return out
    }
    case "Union":
      return ast.types.flatMap((t) => walk(t, segment))
    case "Suspend":
      return walk(ast.thunk(), segment)
    case "Unknown":
    case "Any":
      return [ast]
    default:
      return []
  }
}

/**
 * Checks a dotted path against the encoded side of the document Schema. Columns pass as they are.
 */
export const checkPath = (document: SchemaAST.AST | undefined, path: string, fixed: ReadonlyArray<string> = columns): PathCheck => {
  if (fixed.includes(path)) return { ok: true, segments: [path] }
  const segments = path.split(".")
  if (path.length === 0 || path.length > 512 || segments.some((s) => !segmentPattern.test(s))) {
    return { ok: false, message: `Invalid field path ${JSON.stringify(path)}: use dotted names of letters, digits, '_' or '-'` }
  }
  // without a Schema only the syntax is checked (the path is still bound as a parameter, never spliced)
  if (document === undefined) return { ok: true, segments }
  let nodes: ReadonlyArray<SchemaAST.AST> = [SchemaAST.toEncoded(document)]
  for (const [i, segment] of segments.entries()) {
    nodes = nodes.flatMap((n) => walk(n, segment))
    if (nodes.length === 0) {
      const at = segments.slice(0, i + 1).join(".")
      return { ok: false, message: `Unknown field ${JSON.stringify(at)} in ${JSON.stringify(path)}` }
    }
  }
  return { ok: true, segments }
}

/** Checks every path of a condition and orderings; the first problem wins. */
export const checkQuery = (
  document: SchemaAST.AST | undefined,
  condition: Condition,
  ordering: ReadonlyArray<Ordering>,
  fixed: ReadonlyArray<string> = columns
): string | undefined => {
  for (const path of [...fields(condition), ...ordering.map((o) => o.field)]) {
    const r = checkPath(document, path, fixed)
    if (!r.ok) return r.message
  }
  for (const o of ordering) if (o.direction !== "ASC" && o.direction !== "DESC") return `Invalid ordering direction ${JSON.stringify(o.direction)}`
  return checkValues(condition)
}

const isJson = (u: unknown, depth = 0): boolean => {
  if (depth > 64) return false
  if (u === null || typeof u === "string" || typeof u === "boolean") return true
  if (typeof u === "number") return Number.isFinite(u)
  if (Array.isArray(u)) return u.every((x) => isJson(x, depth + 1))
  if (typeof u === "object") return Object.values(u as object).every((x) => isJson(x, depth + 1))
  return false
}

const checkValues = (c: Condition): string | undefined => {
  switch (c._tag) {
    case "True":
    case "False":
      return undefined
    case "And":
    case "Or":
      for (const x of c.conditions) {
        const m = checkValues(x)
        if (m) return m
      }
      return undefined
    case "Not":
      return checkValues(c.condition)
    case "In":
      return Array.isArray(c.values) && c.values.every((v) => isJson(v)) ? undefined : `IN on ${c.field} needs a list of JSON values`
    case "Like":
      return typeof c.pattern === "string" ? undefined : `LIKE on ${c.field} needs a string pattern`
    default:
      return isJson(c.value) ? undefined : `The value for ${c.field} is not JSON`
  }
}

// ---------------------------------------------------------------------------------------------
// evaluation with jsonb semantics

const rank = (v: unknown): number => {
  if (v === null) return 0
  switch (typeof v) {
    case "string":
      return 1
    case "number":
      return 2
    case "boolean":
      return 3
    default:
      return Array.isArray(v) ? 4 : 5
  }
}

/** PostgreSQL's jsonb order (strings compared by code point, as under the "C" collation). */
export const compareJson = (a: unknown, b: unknown): number => {
  const ra = rank(a)
  const rb = rank(b)
  if (ra !== rb) return ra - rb
  switch (ra) {
    case 0:
      return 0
    case 1:
      return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0
    case 2:
      return (a as number) - (b as number)
    case 3:
      return Number(a) - Number(b)
    case 4: {
      const x = a as ReadonlyArray<unknown>
      const y = b as ReadonlyArray<unknown>
      if (x.length !== y.length) return x.length - y.length
      for (let i = 0; i < x.length; i++) {
        const c = compareJson(x[i], y[i])
        if (c !== 0) return c
      }
      return 0
    }
    default: {
      const x = a as Record<string, unknown>
      const y = b as Record<string, unknown>
      const kx = Object.keys(x).sort()
      const ky = Object.keys(y).sort()
      if (kx.length !== ky.length) return kx.length - ky.length
      for (let i = 0; i < kx.length; i++) {
        if (kx[i] !== ky[i]) return kx[i]! < ky[i]! ? -1 : 1
        const c = compareJson(x[kx[i]!], y[ky[i]!])
        if (c !== 0) return c
      }
      return 0
    }
  }
}

/** jsonb `@>`. */
export const containsJson = (container: unknown, value: unknown): boolean => {
  if (Array.isArray(container)) {
    if (!Array.isArray(value)) return rank(value) <= 3 && container.some((x) => compareJson(x, value) === 0)
    return value.every((v) => container.some((x) => (typeof v === "object" && v !== null ? containsJson(x, v) : compareJson(x, v) === 0)))
  }
  if (typeof container === "object" && container !== null) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return false
    return Object.entries(value).every(([k, v]) => k in container && containsJson((container as Record<string, unknown>)[k], v))
  }
  return compareJson(container, value) === 0
}

const likeToRegExp = (pattern: string): RegExp => {
  let out = "^"
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!
    if (ch === "\\" && i + 1 < pattern.length) out += pattern[++i]!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    else if (ch === "%") out += "[\\s\\S]*"
    else if (ch === "_") out += "[\\s\\S]"
    else out += ch.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  }
  return new RegExp(out + "$")
}

const textOf = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : typeof v === "string" ? v : JSON.stringify(v))

/** The value at a dotted path of a JSON document; `undefined` when absent. */
export const pathIn = (document: unknown, path: string): unknown => {
  let node: unknown = document
  for (const segment of path.split(".")) {
    if (typeof node !== "object" || node === null || Array.isArray(node)) return undefined
    node = (node as Record<string, unknown>)[segment]
  }
  return node
}

/** `evaluate` over any record, given how to read a path from it. */
export const evaluateIn = (c: Condition, lookup: (path: string) => unknown): boolean | undefined => {
  switch (c._tag) {
    case "True":
      return true
    case "False":
      return false
    case "And": {
      let unknown = false
      for (const x of c.conditions) {
        const r = evaluateIn(x, lookup)
        if (r === false) return false
        if (r === undefined) unknown = true
      }
      return unknown ? undefined : true
    }
    case "Or": {
      let unknown = false
      for (const x of c.conditions) {
        const r = evaluateIn(x, lookup)
        if (r === true) return true
        if (r === undefined) unknown = true
      }
      return unknown ? undefined : false
    }
    case "Not": {
      const r = evaluateIn(c.condition, lookup)
      return r === undefined ? undefined : !r
    }
    case "In": {
      if (c.values.length === 0) return false
      const v = lookup(c.field)
      return v === undefined ? undefined : c.values.some((x) => compareJson(v, x) === 0 && rank(v) === rank(x))
    }
    case "Like": {
      const t = textOf(lookup(c.field))
      return t === undefined ? undefined : likeToRegExp(c.pattern).test(t)
    }
    case "Contains": {
      const v = lookup(c.field)
      return v === undefined ? undefined : containsJson(v, c.value)
    }
    default: {
      const v = lookup(c.field)
      if (v === undefined || c.value === null && c._tag !== "Equal" && c._tag !== "NotEqual") return v === undefined ? undefined : compareWith(c._tag, v, c.value)
      return compareWith(c._tag, v, c.value)
    }
  }
}

const compareWith = (tag: string, v: unknown, value: unknown): boolean => {
  const cmp = compareJson(v, value)
  switch (tag) {
    case "Equal":
      return cmp === 0
    case "NotEqual":
      return cmp !== 0
    case "Lower":
      return cmp < 0
    case "LowerEqual":
      return cmp <= 0
    case "Greater":
      return cmp > 0
    default:
      return cmp >= 0
  }
}

/** `compareRecords` over any records, given how to read a path from each. */
export const compareIn = (ordering: ReadonlyArray<Ordering>, a: (path: string) => unknown, b: (path: string) => unknown): number => {
  for (const o of ordering) {
    const x = a(o.field)
    const y = b(o.field)
    let c: number
    if (x === undefined && y === undefined) c = 0
    else if (x === undefined) c = 1
    else if (y === undefined) c = -1
    else c = compareJson(x, y)
    if (c !== 0) return o.direction === "ASC" ? c : -c
  }
  return 0
}
