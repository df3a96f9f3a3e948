/**
 * minos's query language for snapshots: conditions over dotted field paths of the aggregate's
 * snapshot document, and orderings. `uuid`, `version`, `createdAt` and `updatedAt` address the
 * snapshot's own columns.
 *
 * ```ts
 * Condition.and(Condition.equal("subject", "math"), Condition.greater("durationMinutes", 60))
 * ```
 *
 * Values are JSON. Comparisons follow PostgreSQL's `jsonb` rules on every backend: values of
 * different JSON types never compare equal and order `null < string < number < boolean < array < object`.
 *
 * @since 0.1.0
 */

/**
 * @category models
 * @since 0.1.0
 */
export type Condition =
  | { readonly _tag: "True" }
  | { readonly _tag: "False" }
  | { readonly _tag: "And"; readonly conditions: ReadonlyArray<Condition> }
  | { readonly _tag: "Or"; readonly conditions: ReadonlyArray<Condition> }
  | { readonly _tag: "Not"; readonly condition: Condition }
  | { readonly _tag: "Equal" | "NotEqual" | "Lower" | "LowerEqual" | "Greater" | "GreaterEqual" | "Contains"; readonly field: string; readonly value: unknown }
  | { readonly _tag: "In"; readonly field: string; readonly values: ReadonlyArray<unknown> }
  | { readonly _tag: "Like"; readonly field: string; readonly pattern: string }

/**
 * @category models
 * @since 0.1.0
 */
export interface Ordering {
  readonly field: string
  readonly direction: "ASC" | "DESC"
}

/** @since 0.1.0 */
export const TRUE: Condition = { _tag: "True" }
/** @since 0.1.0 */
export const FALSE: Condition = { _tag: "False" }
/** @since 0.1.0 */
export const and = (...conditions: ReadonlyArray<Condition>): Condition => ({ _tag: "And", conditions })
/** @since 0.1.0 */
export const or = (...conditions: ReadonlyArray<Condition>): Condition => ({ _tag: "Or", conditions })
/** @since 0.1.0 */
export const not = (condition: Condition): Condition => ({ _tag: "Not", condition })
/** @since 0.1.0 */
export const equal = (field: string, value: unknown): Condition => ({ _tag: "Equal", field, value })
/** @since 0.1.0 */
export const notEqual = (field: string, value: unknown): Condition => ({ _tag: "NotEqual", field, value })
/** @since 0.1.0 */
export const lower = (field: string, value: unknown): Condition => ({ _tag: "Lower", field, value })
/** @since 0.1.0 */
export const lowerEqual = (field: string, value: unknown): Condition => ({ _tag: "LowerEqual", field, value })
/** @since 0.1.0 */
export const greater = (field: string, value: unknown): Condition => ({ _tag: "Greater", field, value })
/** @since 0.1.0 */
export const greaterEqual = (field: string, value: unknown): Condition => ({ _tag: "GreaterEqual", field, value })
/** `field` is one of `values`; an empty list matches nothing. @since 0.1.0 */
export const isIn = (field: string, values: ReadonlyArray<unknown>): Condition => ({ _tag: "In", field, values })
/** The field (an array or object) contains `value` (jsonb `@>`). @since 0.1.0 */
export const contains = (field: string, value: unknown): Condition => ({ _tag: "Contains", field, value })
/** SQL LIKE on the field's text: `%` any run, `_` one character. @since 0.1.0 */
export const like = (field: string, pattern: string): Condition => ({ _tag: "Like", field, pattern })

/** @since 0.1.0 */
export const asc = (field: string): Ordering => ({ field, direction: "ASC" })
/** @since 0.1.0 */
export const desc = (field: string): Ordering => ({ field, direction: "DESC" })

/** The snapshot's own columns, addressable in conditions and orderings. @since 0.1.0 */
export const columns = ["uuid", "version", "createdAt", "updatedAt"] as const

/**
 * Every field path a condition mentions.
 *
 * @since 0.1.0
 */
export const fields = (condition: Condition): ReadonlyArray<string> => {
  switch (condition._tag) {
    case "True":
    case "False":
      return []
    case "And":
    case "Or":
      return condition.conditions.flatMap(fields)
    case "Not":
      return fields(condition.condition)
    default:
      return [condition.field]
  }
}
