/** Sorting `SqlError`s into the ports' reasons. */
import type { SqlError } from "effect/sql"

export type Kind = "Conflict" | "Unavailable" | "Constraint" | "Unknown"

export const kindOf = (error: SqlError.SqlError): Kind => {
  switch (error.reason._tag) {
    case "UniqueViolation":
      return "Conflict"
    case "ConnectionError":
    case "DeadlockError":
    case "SerializationError":
    case "LockTimeoutError":
    case "StatementTimeoutError":
      return "Unavailable"
    case "ConstraintError":
      return "Constraint"
    default:
      return "Unknown"
  }
}

export const describe = (what: string, error: SqlError.SqlError): string => {
  const cause = (error.reason as { cause?: { message?: string } }).cause
  return `${what}: ${error.reason._tag}${cause?.message ? ` (${cause.message})` : ""}`
}
