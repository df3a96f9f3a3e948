/** Deterministic message identifiers and trace headers. */
import { createHash } from "node:crypto"
import { Effect, Option } from "effect"

/**
 * A name-based UUID (RFC 9562 v5 layout over SHA-1): the same name always gives the same id, so a
 * message re-sent after a crash carries the identifier the receiver's inbox already knows.
 */
export const stableUuid = (name: string): string => {
  const h = createHash("sha1").update("effect-minos:").update(name).digest()
  h[6] = (h[6]! & 0x0f) | 0x50
  h[8] = (h[8]! & 0x3f) | 0x80
  const x = h.subarray(0, 16).toString("hex")
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`
}

/** W3C `traceparent` of the current span, when there is one. */
export const traceparent: Effect.Effect<Option.Option<string>> = Effect.currentSpan.pipe(
  Effect.map((span) => Option.some(`00-${span.traceId.padStart(32, "0").slice(-32)}-${span.spanId.padStart(16, "0").slice(-16)}-${span.sampled ? "01" : "00"}`)),
  Effect.orElseSucceed(() => Option.none<string>())
)

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Aggregate, transaction and message ids are UUIDs. */
export const isUuid = (s: string): boolean => uuidPattern.test(s)

/** The nil UUID stands for "no transaction" (the main store) in storage keys. */
export const NIL = "00000000-0000-0000-0000-000000000000"
