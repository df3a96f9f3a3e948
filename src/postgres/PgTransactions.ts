/**
 * The `Transactions` port on PostgreSQL (`minos_transactions`). Every status change is a guarded
 * `UPDATE … WHERE status IN (…)` (and a trigger refuses illegal moves from any writer); reserving
 * siblings of one parent are serialised by an advisory lock so two of them cannot both pass the
 * collision check; commit moves the writes in the same SQL transaction as the status change.
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { chainOf } from "./internal/Chain.ts"
import { describe, kindOf, reasonOf } from "./internal/Errors.ts"
import { isUuid, NIL } from "../internal/Ids.ts"
import { TransactionError, type TransactionRecord, Transactions, type TransactionsShape, type TransactionStatus, transitions } from "../transaction/Transactions.ts"

interface Row {
  readonly id: string
  readonly parent: string | null
  readonly status: TransactionStatus
  readonly created_ms: bigint | number
  readonly updated_ms: bigint | number
}

const toRecord = (r: Row): TransactionRecord => ({
  id: r.id,
  parent: r.parent,
  status: r.status,
  createdAt: Number(r.created_ms),
  updatedAt: Number(r.updated_ms)
})

const columns = `id, parent, status, (extract(epoch FROM created_at) * 1000)::bigint AS created_ms,
  (extract(epoch FROM updated_at) * 1000)::bigint AS updated_ms`

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const cols = sql.literal(columns)

  const failure = (id: string, what: string) => (error: SqlError.SqlError) =>
    new TransactionError({
      reason: kindOf(error) === "Conflict" ? "Conflict" : reasonOf(error),
      transaction: id,
      message: describe(what, error),
      cause: error
    })
  const error = (id: string, reason: TransactionError["reason"], message: string) => new TransactionError({ reason, transaction: id, message })

  const find = (id: string) => sql<Row>`SELECT ${cols} FROM minos_transactions WHERE id = ${id}::uuid`.pipe(Effect.map((rows) => rows[0]))

  const get = Effect.fn("PgTransactions.get")(function*(id: string) {
    if (!isUuid(id)) return yield* Effect.fail(error(id, "InvalidInput", `Transaction id ${JSON.stringify(id)} is not a UUID`))
    const row = yield* find(id).pipe(Effect.mapError(failure(id, "get")))
    if (row === undefined) return yield* Effect.fail(error(id, "NotFound", `Unknown transaction ${id}`))
    return toRecord(row)
  })

  /** Guarded move; explains a refusal as NotFound or IllegalTransition. */
  const move = (id: string, to: TransactionStatus) =>
    Effect.gen(function*() {
      const from = (Object.keys(transitions) as Array<TransactionStatus>).filter((s) => transitions[s].includes(to))
      const rows = yield* sql<Row>`UPDATE minos_transactions SET status = ${to}::text
        WHERE id = ${id}::uuid AND status = ANY(${from}::text[]) RETURNING ${cols}`.pipe(Effect.mapError(failure(id, `move to ${to}`)))
      if (rows[0] !== undefined) return toRecord(rows[0])
      const current = yield* get(id)
      return yield* Effect.fail(error(id, "IllegalTransition", `Transaction ${id} cannot move from ${current.status} to ${to}`))
    })

  const begin = Effect.fn("PgTransactions.begin")(function*(options?: { readonly id?: string | undefined; readonly parent?: string | null | undefined }) {
    const id = options?.id ?? crypto.randomUUID()
    if (!isUuid(id)) return yield* Effect.fail(error(id, "InvalidInput", `Transaction id ${JSON.stringify(id)} is not a UUID`))
    const parent = options?.parent ?? null
    if (parent !== null) {
      const p = yield* get(parent).pipe(Effect.mapError((e) => (e.reason === "NotFound" || e.reason === "InvalidInput" ? error(id, e.reason, `Parent ${e.message}`) : e)))
      if (p.status !== "pending") return yield* Effect.fail(error(id, "IllegalTransition", `Parent transaction ${parent} is ${p.status}, not pending`))
    }
    const rows = yield* sql<Row>`INSERT INTO minos_transactions (id, parent, status) VALUES (${id}::uuid, ${parent}::uuid, 'pending')
      ON CONFLICT (id) DO NOTHING RETURNING ${cols}`.pipe(Effect.mapError(failure(id, "begin")))
    if (rows[0] === undefined) return yield* Effect.fail(error(id, "AlreadyExists", `Transaction ${id} already exists`))
    return toRecord(rows[0])
  })

  const chain = Effect.fn("PgTransactions.chain")(function*(id: string) {
    if (!isUuid(id)) return yield* Effect.fail(error(id, "InvalidInput", `Transaction id ${JSON.stringify(id)} is not a UUID`))
    const rows = yield* chainOf(sql, id).pipe(Effect.mapError(failure(id, "chain")))
    if (rows.length === 0) return yield* Effect.fail(error(id, "NotFound", `Unknown transaction ${id}`))
    return rows.map((r) => r.id)
  })

  const discard = (id: string) =>
    Effect.all([
      sql`DELETE FROM minos_events WHERE transaction_id = ${id}::uuid`,
      sql`DELETE FROM minos_snapshots WHERE transaction_id = ${id}::uuid`,
      sql`DELETE FROM minos_outbox WHERE transaction_id = ${id}::uuid`
    ], { discard: true }).pipe(Effect.mapError(failure(id, "discard writes")))

  /** Writes of `id` that collide with the destination view or a reserving/reserved/committing sibling. */
  const collisions = (id: string, parent: string | null) =>
    Effect.gen(function*() {
      const destination = parent === null ? [NIL] : [NIL, ...(yield* chainOf(sql, parent).pipe(Effect.mapError(failure(id, "chain")))).map((r) => r.id)]
      const rows = yield* sql<{ n: number }>`
        SELECT count(*)::int AS n FROM minos_events mine
        WHERE mine.transaction_id = ${id}::uuid AND EXISTS (
          SELECT 1 FROM minos_events other
          WHERE other.aggregate_id = mine.aggregate_id AND other.version = mine.version AND other.transaction_id <> mine.transaction_id
            AND (other.transaction_id = ANY(${destination}::uuid[]) OR other.transaction_id IN (
              SELECT t.id FROM minos_transactions t
              WHERE t.parent IS NOT DISTINCT FROM ${parent}::uuid AND t.status IN ('reserving', 'reserved', 'committing'))))`.pipe(
        Effect.mapError(failure(id, "collision check"))
      )
      return rows[0]?.n ?? 0
    })

  /** The parent must still take writes: a child reserved or committed into a closed parent is lost. */
  const checkParent = (id: string, parent: string | null) =>
    parent === null ? Effect.void : Effect.gen(function*() {
      const rows = yield* sql<{ status: string }>`SELECT status FROM minos_transactions WHERE id = ${parent}::uuid FOR SHARE`.pipe(
        Effect.mapError(failure(id, "parent"))
      )
      const status = rows[0]?.status ?? "unknown"
      if (status !== "pending") return yield* Effect.fail(error(id, "IllegalTransition", `Transaction ${id} cannot go on inside ${parent}, which is ${status}`))
    })

  const reserveIn = (id: string) =>
    Effect.gen(function*() {
      const tx = yield* move(id, "reserving")
      yield* checkParent(id, tx.parent)
      // siblings reserve one at a time, so two colliding ones cannot both pass
      yield* sql`SELECT pg_advisory_xact_lock(hashtext('effect-minos:reserve:' || ${tx.parent ?? NIL}::text))`.pipe(Effect.mapError(failure(id, "lock")))
      // appends to our streams hold these keys shared: wait for the ones in flight, in a fixed order
      yield* sql`SELECT pg_advisory_xact_lock(hashtextextended('effect-minos:stream:' || s.aggregate_id::text, 0))
        FROM (SELECT DISTINCT aggregate_id FROM minos_events WHERE transaction_id = ${id}::uuid ORDER BY aggregate_id) s`.pipe(Effect.mapError(failure(id, "lock")))
      const n = yield* collisions(id, tx.parent)
      if (n > 0) {
        yield* move(id, "rejected")
        yield* discard(id)
        return { rejected: true as const, count: n }
      }
      return { rejected: false as const, record: yield* move(id, "reserved") }
    })

  const reserve = Effect.fn("PgTransactions.reserve")(function*(id: string) {
    yield* get(id)
    const r = yield* sql.withTransaction(reserveIn(id)).pipe(Effect.mapError((e) => (e._tag === "SqlError" ? failure(id, "reserve")(e) : e)))
    if (r.rejected) return yield* Effect.fail(error(id, "Conflict", `Transaction ${id} collides with ${r.count} write(s) already in its destination or a reserved sibling; it was rejected`))
    return r.record
  })

  const commitIn = (id: string) =>
    Effect.gen(function*() {
      const tx = yield* move(id, "committing")
      yield* checkParent(id, tx.parent)
      const parent = tx.parent ?? NIL
      yield* sql`INSERT INTO minos_events (aggregate_id, aggregate, version, type, data, metadata, transaction_id, created_at)
        SELECT aggregate_id, aggregate, version, type, data, metadata, ${parent}::uuid, created_at
        FROM minos_events WHERE transaction_id = ${id}::uuid ORDER BY position`
      yield* sql`INSERT INTO minos_snapshots (aggregate_id, transaction_id, aggregate, version, document, deleted, created_at, updated_at)
        SELECT aggregate_id, ${parent}::uuid, aggregate, version, document, deleted, created_at, updated_at
        FROM minos_snapshots WHERE transaction_id = ${id}::uuid
        ON CONFLICT (aggregate_id, transaction_id) DO UPDATE SET
          aggregate = EXCLUDED.aggregate, version = EXCLUDED.version, document = EXCLUDED.document,
          deleted = EXCLUDED.deleted, updated_at = EXCLUDED.updated_at
        WHERE minos_snapshots.version < EXCLUDED.version`
      yield* sql`UPDATE minos_outbox SET transaction_id = ${parent}::uuid WHERE transaction_id = ${id}::uuid`
      yield* sql`DELETE FROM minos_events WHERE transaction_id = ${id}::uuid`
      yield* sql`DELETE FROM minos_snapshots WHERE transaction_id = ${id}::uuid`
      return yield* move(id, "committed")
    })

  const commit = Effect.fn("PgTransactions.commit")(function*(id: string) {
    const current = yield* get(id)
    if (current.status === "pending") yield* reserve(id)
    // a reserved transaction's versions are refused to every other writer, so a collision here
    // breaks an invariant: it stays reserved (for an operator) instead of losing its writes
    return yield* sql.withTransaction(commitIn(id)).pipe(
      Effect.catchTag("SqlError", (e) =>
        Effect.fail(kindOf(e) === "Conflict"
          ? new TransactionError({ reason: "Unknown", transaction: id, message: `Transaction ${id} collided while committing although it was reserved; it stays reserved`, cause: e })
          : failure(id, "commit")(e)))
    )
  })

  const reject = Effect.fn("PgTransactions.reject")(function*(id: string) {
    yield* get(id)
    return yield* sql.withTransaction(Effect.gen(function*() {
      const r = yield* move(id, "rejected")
      yield* discard(id)
      return r
    })).pipe(Effect.mapError((e) => (e._tag === "SqlError" ? failure(id, "reject")(e) : e)))
  })

  const list = Effect.fn("PgTransactions.list")(function*(options: { readonly status?: TransactionStatus | undefined; readonly olderThan?: number | undefined }) {
    const rows = yield* sql<Row>`SELECT ${cols} FROM minos_transactions
      WHERE (${options.status ?? null}::text IS NULL OR status = ${options.status ?? null}::text)
        AND (${options.olderThan ?? null}::float8 IS NULL OR updated_at < to_timestamp(${options.olderThan ?? null}::float8 / 1000))
      ORDER BY updated_at`.pipe(Effect.mapError(failure(NIL, "list")))
    return rows.map(toRecord)
  })

  return Transactions.of({ begin, get, chain, reserve, commit, reject, list } satisfies TransactionsShape)
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<Transactions, never, SqlClient.SqlClient> = Layer.effect(Transactions, make)
