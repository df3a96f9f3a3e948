/**
 * Compiles conditions and orderings to SQL fragments over a jsonb `document` column of a table
 * aliased `s`. Every value is a bound parameter and every field path a `text[]` parameter; the
 * fixed columns come from the caller's own map, never from the query.
 */
import type { SqlClient, Statement } from "effect/sql"
import type { Condition, Ordering } from "../../query/Condition.ts"

export interface Column {
  /** The column as jsonb (comparisons). */
  readonly json: Statement.Fragment
  /** The column as text (LIKE). */
  readonly text: Statement.Fragment
}

export const makeCompiler = (sql: SqlClient.SqlClient, columns: Readonly<Record<string, Column>>, tiebreak: Statement.Fragment) => {
  const expr = (path: string): Statement.Fragment => columns[path]?.json ?? sql`(s.document #> ${path.split(".")}::text[])`
  const text = (path: string): Statement.Fragment => columns[path]?.text ?? sql`(s.document #>> ${path.split(".")}::text[])`
  const json = (v: unknown) => JSON.stringify(v)

  const compile = (c: Condition): Statement.Fragment => {
    switch (c._tag) {
      case "True":
        return sql`TRUE`
      case "False":
        return sql`FALSE`
      case "And":
        return c.conditions.length === 0 ? sql`TRUE` : sql.and(c.conditions.map(compile))
      case "Or":
        return c.conditions.length === 0 ? sql`FALSE` : sql.or(c.conditions.map(compile))
      case "Not":
        return sql`NOT (${compile(c.condition)})`
      case "Equal":
        return sql`${expr(c.field)} = ${json(c.value)}::jsonb`
      case "NotEqual":
        return sql`${expr(c.field)} <> ${json(c.value)}::jsonb`
      case "Lower":
        return sql`${expr(c.field)} < ${json(c.value)}::jsonb`
      case "LowerEqual":
        return sql`${expr(c.field)} <= ${json(c.value)}::jsonb`
      case "Greater":
        return sql`${expr(c.field)} > ${json(c.value)}::jsonb`
      case "GreaterEqual":
        return sql`${expr(c.field)} >= ${json(c.value)}::jsonb`
      case "Contains":
        return sql`${expr(c.field)} @> ${json(c.value)}::jsonb`
      case "In":
        return c.values.length === 0 ? sql`FALSE` : sql`${expr(c.field)} = ANY(${c.values.map(json)}::jsonb[])`
      case "Like":
        return sql`${text(c.field)} LIKE ${c.pattern}::text`
    }
  }

  /** ORDER BY the orderings, then the tiebreak, so both backends agree on the order of ties. */
  const orderBy = (ordering: ReadonlyArray<Ordering>): Statement.Fragment =>
    sql.join(", ", false)([
      ...ordering.map((o) => (o.direction === "ASC" ? sql`${expr(o.field)} ASC` : sql`${expr(o.field)} DESC`)),
      tiebreak
    ])

  return { compile, orderBy }
}
