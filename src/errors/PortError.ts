/**
 * The marker every port error carries, and the one classification of failures that the transports
 * (HTTP, the broker consumer, sagas) share.
 *
 * A port error is a tagged error with a `reason` and an `isRetryable` getter, marked with
 * {@link TypeId}, in the style of Effect's own `SqlError`. Whatever a handler fails with is sorted
 * by {@link kindOf}:
 *
 * | kind | what | HTTP | broker command |
 * | --- | --- | --- | --- |
 * | `Domain` | a tagged error that is neither a port error nor one of Effect's own (the user's `decide` errors) | its status (`HttpStatus`), default 400 | 400 reply |
 * | `Conflict` | a port error whose reason is `Conflict` (stale expected version, collision) | 409 | 400 reply |
 * | `NotFound` / `Gone` | reason `NotFound` / `Deleted` | 404 / 410 | 400 reply |
 * | `Invalid` | reason `InvalidInput`, `InvalidQuery`, `InvalidTopic`: the caller's input cannot be stored | 400 | 400 reply |
 * | `Unavailable` | retryable: a port error with `isRetryable`, or a transient `SqlError` | 503 | retried, then dead-lettered |
 * | `Internal` | anything else: other port or SQL errors, Effect's own errors, non-errors | 500 | retried, then dead-lettered |
 *
 * **Gotchas**
 *
 * `EventStoreError` `Conflict` is retryable for the command path (the repository decides again on
 * fresh state) but answers 409 at the edge once the repository gave up: `Conflict` is checked
 * before retryability.
 *
 * @since 0.1.0
 */
import { Cause, Predicate, Schema } from "effect"
import { HttpClientError, HttpServerError } from "effect/http"
import * as PlatformError from "effect/PlatformError"
import { SqlError } from "effect/sql"

/**
 * @category type ids
 * @since 0.1.0
 */
export const TypeId = "~effect-minos/PortError" as const

/**
 * @category type ids
 * @since 0.1.0
 */
export type TypeId = typeof TypeId

/**
 * What every port error offers. Port error classes implement it with
 * `get [PortError.TypeId]() { return PortError.TypeId }` and an `isRetryable` getter.
 *
 * @category models
 * @since 0.1.0
 */
export interface PortError {
  readonly [TypeId]: TypeId
  readonly _tag: string
  readonly reason: string
  readonly message: string
  readonly isRetryable: boolean
}

/**
 * @category guards
 * @since 0.1.0
 */
export const isPortError = (u: unknown): u is PortError => Predicate.hasProperty(u, TypeId)

// PostgreSQL states that end when the server is back: shutting down (57P01, 57P02), starting up
// (57P03), out of connections or memory (53300, 53200, 53100); sql-pg files them under UnknownError
const transientStates = new Set(["57P01", "57P02", "57P03", "53300", "53200", "53100"])

/**
 * A `SqlError` that is worth retrying: its own `isRetryable`, or a server that is restarting.
 *
 * @category guards
 * @since 0.1.0
 */
export const isTransientSqlError = (error: SqlError.SqlError): boolean => {
  if (error.isRetryable) return true
  const code = (error.reason as { readonly cause?: { readonly code?: unknown } }).cause?.code
  return typeof code === "string" && transientStates.has(code)
}

/**
 * An outage: retrying later can succeed.
 *
 * @category guards
 * @since 0.1.0
 */
export const isRetryable = (u: unknown): boolean =>
  isPortError(u) ? u.isRetryable : SqlError.isSqlError(u) ? isTransientSqlError(u) : false

/** Effect's own failures: never a user's domain error. */
const isEffectError = (u: unknown): boolean =>
  SqlError.isSqlError(u) ||
  Schema.isSchemaError(u) ||
  Cause.isNoSuchElementError(u) ||
  Cause.isTimeoutError(u) ||
  Cause.isIllegalArgumentError(u) ||
  Cause.isExceededCapacityError(u) ||
  Cause.isUnknownError(u) ||
  HttpServerError.isHttpServerError(u) ||
  HttpClientError.isHttpClientError(u) ||
  PlatformError.isPlatformError(u)

/**
 * How a failure is answered (see the module header).
 *
 * @category models
 * @since 0.1.0
 */
export type Kind = "Domain" | "Conflict" | "NotFound" | "Gone" | "Invalid" | "Unavailable" | "Internal"

/**
 * Sorts a failure into its {@link Kind}.
 *
 * @since 0.1.0
 */
export const kindOf = (u: unknown): Kind => {
  if (isPortError(u)) {
    switch (u.reason) {
      case "Conflict":
        return "Conflict"
      case "NotFound":
        return "NotFound"
      case "Deleted":
        return "Gone"
      case "InvalidInput":
      case "InvalidQuery":
      case "InvalidTopic":
        return "Invalid"
    }
    return u.isRetryable ? "Unavailable" : "Internal"
  }
  if (SqlError.isSqlError(u)) return isTransientSqlError(u) ? "Unavailable" : "Internal"
  if (isEffectError(u) || !Predicate.hasProperty(u, "_tag") || typeof u._tag !== "string") return "Internal"
  return "Domain"
}

/**
 * A failure the caller caused and can be told about (a domain error, a conflict, a missing or
 * deleted aggregate, invalid input): everything but `Unavailable` and `Internal`.
 *
 * @category guards
 * @since 0.1.0
 */
export const isAnswer = (u: unknown): boolean => {
  const kind = kindOf(u)
  return kind !== "Unavailable" && kind !== "Internal"
}
