/**
 * JSON values as the stores accept them: plain objects, arrays, finite numbers, no `undefined`, and
 * strings (keys included) without NUL or lone surrogates. PostgreSQL's text and jsonb cannot hold
 * NUL, and a lone surrogate is not Unicode (the driver would replace it, LMDB's encoder keep it), so
 * both backends refuse the same values, and the HTTP and broker edges refuse them as bad input before
 * a handler runs.
 */

const unstorable = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** A string every store can hold. */
export const isStorableString = (s: string): boolean => !unstorable.test(s)

export const isJson = (u: unknown, depth = 0): boolean => {
  if (depth > 100) return false
  if (u === null || typeof u === "boolean") return true
  if (typeof u === "string") return isStorableString(u)
  if (typeof u === "number") return Number.isFinite(u)
  if (Array.isArray(u)) return u.every((x) => isJson(x, depth + 1))
  if (typeof u === "object") {
    const proto = Object.getPrototypeOf(u)
    if (proto !== Object.prototype && proto !== null) return false
    return Object.entries(u as object).every(([k, x]) => x !== undefined && isStorableString(k) && isJson(x, depth + 1))
  }
  return false
}

/**
 * The path of the first string (or key) holding a NUL or a lone surrogate in a decoded JSON value,
 * `""` for the value itself; `undefined` when there is none. Depth-bounded like {@link isJson}; a
 * deeper value is left to the Schemas.
 */
export const unstorableStringAt = (u: unknown, path = "", depth = 0): string | undefined => {
  if (typeof u === "string") return isStorableString(u) ? undefined : path
  if (depth > 100 || u === null || typeof u !== "object") return undefined
  const entries: Array<[string, unknown]> = Array.isArray(u) ? u.map((x, i) => [String(i), x]) : Object.entries(u)
  for (const [k, x] of entries) {
    const at = path === "" ? k : `${path}.${k}`
    if (!isStorableString(k)) return path === "" ? "(a key)" : `${path} (a key)`
    const found = unstorableStringAt(x, at, depth + 1)
    if (found !== undefined) return found
  }
  return undefined
}

/** The message for {@link unstorableStringAt}'s finding. */
export const unstorableMessage = (path: string): string =>
  `${path === "" ? "the value" : path}: strings may not contain NUL (\\u0000) or unpaired surrogates`

const unstorableAll = new RegExp(unstorable.source, "g")

/**
 * `s` with every NUL and unpaired surrogate written as its `\uXXXX` escape: for keeping bytes that
 * arrived from outside (a poison record's value, key or headers) in a store that cannot hold them.
 */
export const escapeUnstorable = (s: string): string =>
  s.replace(unstorableAll, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
