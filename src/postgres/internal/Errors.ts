/** Sorting `SqlError`s into the ports' reasons. */
import type { SqlError } from "effect/sql"
import { isTransientSqlError } from "../../errors/PortError.ts"

export type Kind = "Conflict" | "Unavailable" | "Constraint" | "Invalid" | "Unknown"

const stateOf = (error: SqlError.SqlError): string | undefined => {
  const code = (error.reason as { readonly cause?: { readonly code?: unknown } }).cause?.code
  return typeof code === "string" ? code : undefined
}

export const kindOf = (error: SqlError.SqlError): Kind => {
  if (isTransientSqlError(error)) return "Unavailable"
  switch (error.reason._tag) {
    case "UniqueViolation":
      return "Conflict"
    case "ConstraintError":
      return "Constraint"
  }
  // class 22, data exception: a value PostgreSQL cannot store (e.g. \u0000 in jsonb)
  return stateOf(error)?.startsWith("22") ? "Invalid" : "Unknown"
}

/** The reason of a port whose reasons include `Unavailable`, `InvalidInput` and `Unknown`. */
export const reasonOf = (error: SqlError.SqlError): "Unavailable" | "InvalidInput" | "Unknown" => {
  const kind = kindOf(error)
  return kind === "Unavailable" ? "Unavailable" : kind === "Invalid" ? "InvalidInput" : "Unknown"
}

export const describe = (what: string, error: SqlError.SqlError): string => {
  const cause = (error.reason as { cause?: { message?: string } }).cause
  return `${what}: ${error.reason._tag}${cause?.message ? ` (${cause.message})` : ""}`
}
