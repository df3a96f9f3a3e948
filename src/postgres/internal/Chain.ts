/** The chain of a minos transaction on PostgreSQL: `[outermost, …, id]` (empty when unknown). */
import { Effect } from "effect"
import type { SqlClient, SqlError } from "effect/sql"

export const chainOf = (sql: SqlClient.SqlClient, id: string): Effect.Effect<ReadonlyArray<{ readonly id: string; readonly status: string }>, SqlError.SqlError> =>
  sql<{ id: string; status: string }>`
    WITH RECURSIVE c(id, parent, status, depth) AS (
      SELECT id, parent, status, 0 FROM minos_transactions WHERE id = ${id}::uuid
      UNION ALL
      SELECT t.id, t.parent, t.status, c.depth + 1 FROM minos_transactions t JOIN c ON t.id = c.parent
    )
    SELECT id, status FROM c ORDER BY depth DESC`.pipe(Effect.map((rows) => rows))
