/** JSON values as the stores accept them: plain objects, arrays, finite numbers, no `undefined`. */

export const isJson = (u: unknown, depth = 0): boolean => {
  if (depth > 100) return false
  if (u === null || typeof u === "string" || typeof u === "boolean") return true
  if (typeof u === "number") return Number.isFinite(u)
  if (Array.isArray(u)) return u.every((x) => isJson(x, depth + 1))
  if (typeof u === "object") {
    const proto = Object.getPrototypeOf(u)
    if (proto !== Object.prototype && proto !== null) return false
    return Object.values(u as object).every((x) => x !== undefined && isJson(x, depth + 1))
  }
  return false
}
