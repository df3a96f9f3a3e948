/** Input checks shared by the event store backends; a string says what is wrong. */
import type { AppendInput } from "../EventStore.ts"
import { isUuid } from "../EventStore.ts"

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

export const checkAppend = (input: AppendInput): string | undefined => {
  if (!isUuid(input.aggregateId)) return `Aggregate id ${JSON.stringify(input.aggregateId)} is not a UUID`
  if (typeof input.aggregate !== "string" || input.aggregate.length === 0) return "The aggregate name is empty"
  if (!Number.isInteger(input.expectedVersion) || input.expectedVersion < 0) return `Expected version must be a non-negative integer, got ${input.expectedVersion}`
  if (input.transaction !== undefined && !isUuid(input.transaction)) return `Transaction id ${JSON.stringify(input.transaction)} is not a UUID`
  if (!Number.isFinite(input.now)) return "The event time is not a number"
  if (input.events.length === 0) return "No events to append"
  for (const [i, e] of input.events.entries()) {
    if (typeof e.type !== "string" || e.type.length === 0) return `Event ${i} has no type`
    if (!isJson(e.data)) return `Event ${i} (${e.type}) data is not JSON`
    if (e.metadata !== undefined && !isJson(e.metadata)) return `Event ${i} (${e.type}) metadata is not JSON`
  }
  return undefined
}
