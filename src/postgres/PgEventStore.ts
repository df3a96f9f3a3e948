/**
 * The `EventStore` port on PostgreSQL (`minos_events`).
 *
 * - Append is one `INSERT … SELECT` guarded by the stream's current version, plus the
 *   `UNIQUE (aggregate_id, transaction_id, version)` constraint for writers racing past the guard.
 * - The global read follows `(tx_xid, position)` and stops below the oldest transaction still in
 *   flight (`pg_snapshot_xmin`), so an event whose transaction commits late is never skipped: every
 *   event with a smaller xid is final, and every later event sorts after the checkpoint.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { chainOf } from "./internal/Chain.ts"
import { describe, kindOf, reasonOf } from "./internal/Errors.ts"
import { type AppendInput, type AppendResult, EventStore, EventStoreError, type EventStoreShape, type StoredEvent, checkAppend } from "../eventstore/EventStore.ts"
import { isUuid, NIL } from "../internal/Ids.ts"

interface Row {
  readonly position: bigint
  readonly aggregate_id: string
  readonly aggregate: string
  readonly version: number
  readonly type: string
  readonly data: unknown
  readonly metadata: Record<string, unknown>
  readonly transaction_id: string
  readonly created_ms: bigint | number
  readonly xid?: string
}

const toEvent = (r: Row): StoredEvent => ({
  position: Number(r.position),
  aggregateId: r.aggregate_id,
  aggregate: r.aggregate,
  version: r.version,
  type: r.type,
  data: r.data,
  metadata: r.metadata,
  transactionId: r.transaction_id === NIL ? null : r.transaction_id,
  createdAt: Number(r.created_ms)
})

const sqlFailure = (what: string, aggregateId?: string) => (error: SqlError.SqlError) =>
  new EventStoreError({
    reason: kindOf(error) === "Conflict" ? "Conflict" : reasonOf(error),
    message: describe(what, error),
    ...(aggregateId === undefined ? {} : { aggregateId }),
    cause: error
  })

const invalid = (message: string, aggregateId?: string) =>
  new EventStoreError({ reason: "InvalidInput", message, ...(aggregateId === undefined ? {} : { aggregateId }) })

const parseCheckpoint = (checkpoint: string): readonly [string, string] | undefined => {
  if (checkpoint === "0") return ["0", "0"]
  const m = /^(\d{1,20}):(\d{1,20})$/.exec(checkpoint)
  return m === null ? undefined : [m[1]!, m[2]!]
}

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  /** `[NIL, outermost, …, tx]`, or undefined when the transaction is unknown. */
  const view = (tx: string | undefined, aggregateId?: string) =>
    tx === undefined
      ? Effect.succeed([NIL] as ReadonlyArray<string>)
      : Effect.gen(function*() {
        if (!isUuid(tx)) return yield* Effect.fail(invalid(`Transaction id ${JSON.stringify(tx)} is not a UUID`, aggregateId))
        const chain = yield* chainOf(sql, tx).pipe(Effect.mapError(sqlFailure("read transaction chain", aggregateId)))
        if (chain.length === 0) {
          return yield* Effect.fail(new EventStoreError({ reason: "TransactionClosed", message: `Unknown transaction ${tx}`, ...(aggregateId === undefined ? {} : { aggregateId }) }))
        }
        return [NIL, ...chain.map((c) => c.id)]
      })

  const append = Effect.fn("PgEventStore.append")(function*(input: AppendInput) {
    const problem = checkAppend(input)
    if (problem !== undefined) return yield* Effect.fail(invalid(problem, isUuid(input.aggregateId) ? input.aggregateId : undefined))
    // the lock is transaction-scoped: outside a unit of work the append opens its own transaction
    const inTransaction = Option.isSome(yield* Effect.serviceOption(sql.transactionService))
    return yield* (inTransaction ? appendIn(input) : sql.withTransaction(appendIn(input)).pipe(
      Effect.mapError((e) => (e._tag === "SqlError" ? sqlFailure("append", input.aggregateId)(e) : e))
    ))
  })

  const appendIn = (input: AppendInput) => Effect.gen(function*() {
    const chain = yield* view(input.transaction, input.aggregateId)
    const tx = input.transaction ?? NIL
    // reserve takes this key exclusively: an append it has not seen yet commits before its check,
    // and one after it sees the claim (so a reserved transaction's versions are never taken)
    yield* sql`SELECT pg_advisory_xact_lock_shared(hashtextextended(${`effect-minos:stream:${input.aggregateId}`}::text, 0))`.pipe(
      Effect.mapError(sqlFailure("append", input.aggregateId))
    )
    // the destination this write lands in, as reserving transactions see it: siblings of the same parent
    const parent = input.transaction === undefined ? null : chain.length >= 3 ? chain[chain.length - 2]! : null
    const types = input.events.map((e) => e.type)
    const datas = input.events.map((e) => JSON.stringify(e.data))
    const metas = input.events.map((e) => JSON.stringify(e.metadata ?? {}))
    const rows = sql`SELECT ${input.aggregateId}::uuid, ${input.aggregate}::text, ${input.expectedVersion}::int + e.ord::int, e.type, e.data, e.metadata,
             ${tx}::uuid, to_timestamp(${input.now}::float8 / 1000)
      FROM unnest(${types}::text[], ${datas}::jsonb[], ${metas}::jsonb[]) WITH ORDINALITY AS e(type, data, metadata, ord)`
    // Main store: a stream ahead of expectedVersion trips the unique constraint; one behind it fails the
    // point lookup of the expected version. Inside a transaction the view spans the chain, so compare
    // with the chain's highest version and hold the transaction row against a concurrent commit.
    const guard = input.transaction === undefined
      ? input.expectedVersion === 0
        ? sql`TRUE`
        : sql`EXISTS (SELECT 1 FROM minos_events WHERE aggregate_id = ${input.aggregateId}::uuid
                      AND transaction_id = ${NIL}::uuid AND version = ${input.expectedVersion}::int)`
      : sql`(SELECT coalesce(max(version), 0) FROM minos_events
             WHERE aggregate_id = ${input.aggregateId}::uuid AND transaction_id = ANY(${chain}::uuid[])) = ${input.expectedVersion}::int
            AND EXISTS (SELECT 1 FROM minos_transactions WHERE id = ${tx}::uuid AND status = 'pending' FOR SHARE)`
    const claimed = sql`NOT EXISTS (SELECT 1 FROM minos_events o JOIN minos_transactions t ON t.id = o.transaction_id
        WHERE o.aggregate_id = ${input.aggregateId}::uuid AND o.transaction_id <> ${tx}::uuid
          AND o.version > ${input.expectedVersion}::int AND o.version <= ${input.expectedVersion + input.events.length}::int
          AND t.parent IS NOT DISTINCT FROM ${parent}::uuid AND t.status IN ('reserving', 'reserved', 'committing'))`
    const inserted = yield* sql<{ position: bigint }>`
      INSERT INTO minos_events (aggregate_id, aggregate, version, type, data, metadata, transaction_id, created_at)
      ${rows} WHERE ${guard} AND ${claimed}
      RETURNING position`.pipe(Effect.mapError(sqlFailure("append", input.aggregateId)))
    if (inserted.length === 0) {
      if (input.transaction !== undefined) {
        const status = yield* sql<{ status: string }>`SELECT status FROM minos_transactions WHERE id = ${tx}::uuid`.pipe(
          Effect.mapError(sqlFailure("append", input.aggregateId))
        )
        if (status[0]?.status !== "pending") {
          return yield* Effect.fail(new EventStoreError({ reason: "TransactionClosed", message: `Transaction ${tx} is ${status[0]?.status ?? "unknown"}, not pending`, aggregateId: input.aggregateId }))
        }
      }
      const current = yield* streamVersion(input.aggregateId, { transaction: input.transaction })
      return yield* Effect.fail(new EventStoreError({
        reason: "Conflict",
        message: current === input.expectedVersion
          ? `${input.aggregate} ${input.aggregateId} version ${input.expectedVersion + 1} is claimed by a reserved transaction; decide again after it commits or is rejected`
          : `${input.aggregate} ${input.aggregateId} is at version ${current}, not ${input.expectedVersion}`,
        aggregateId: input.aggregateId
      }))
    }
    return { aggregateId: input.aggregateId, fromVersion: input.expectedVersion + 1, toVersion: input.expectedVersion + input.events.length } satisfies AppendResult
  })

  const readStream = Effect.fn("PgEventStore.readStream")(function*(
    aggregateId: string,
    options?: { readonly afterVersion?: number | undefined; readonly transaction?: string | undefined }
  ) {
    if (!isUuid(aggregateId)) return yield* Effect.fail(invalid(`Aggregate id ${JSON.stringify(aggregateId)} is not a UUID`))
    const after = options?.afterVersion ?? 0
    const chain = yield* view(options?.transaction, aggregateId)
    const rows = chain.length === 1
      ? yield* sql<Row>`
          SELECT position, aggregate_id, aggregate, version, type, data, metadata, transaction_id,
                 (extract(epoch FROM created_at) * 1000)::bigint AS created_ms
          FROM minos_events WHERE aggregate_id = ${aggregateId}::uuid AND transaction_id = ${NIL}::uuid AND version > ${after}::int
          ORDER BY version`
      : yield* sql<Row>`
          SELECT DISTINCT ON (version) position, aggregate_id, aggregate, version, type, data, metadata, transaction_id,
                 (extract(epoch FROM created_at) * 1000)::bigint AS created_ms
          FROM minos_events WHERE aggregate_id = ${aggregateId}::uuid AND transaction_id = ANY(${chain}::uuid[]) AND version > ${after}::int
          ORDER BY version, array_position(${chain}::uuid[], transaction_id) DESC`
    return rows.map(toEvent)
  }, (effect, aggregateId) => Effect.mapError(effect, (e) => (e._tag === "SqlError" ? sqlFailure("read stream", aggregateId)(e) : e)))

  const streamVersion = Effect.fn("PgEventStore.streamVersion")(function*(aggregateId: string, options?: { readonly transaction?: string | undefined }) {
    if (!isUuid(aggregateId)) return yield* Effect.fail(invalid(`Aggregate id ${JSON.stringify(aggregateId)} is not a UUID`))
    const chain = yield* view(options?.transaction, aggregateId)
    const rows = yield* sql<{ v: number }>`
      SELECT coalesce(max(version), 0)::int AS v FROM minos_events
      WHERE aggregate_id = ${aggregateId}::uuid AND transaction_id = ANY(${chain}::uuid[])`.pipe(Effect.mapError(sqlFailure("stream version", aggregateId)))
    return rows[0]?.v ?? 0
  })

  const readAll = Effect.fn("PgEventStore.readAll")(function*(checkpoint: string, limit: number) {
    const at = parseCheckpoint(checkpoint)
    if (at === undefined) return yield* Effect.fail(invalid(`Malformed checkpoint ${JSON.stringify(checkpoint)}`))
    if (!Number.isInteger(limit) || limit < 1) return yield* Effect.fail(invalid(`limit must be a positive integer, got ${limit}`))
    const rows = yield* sql<Row>`
      SELECT position, aggregate_id, aggregate, version, type, data, metadata, transaction_id,
             (extract(epoch FROM created_at) * 1000)::bigint AS created_ms, tx_xid::text AS xid
      FROM minos_events
      WHERE transaction_id = ${NIL}::uuid
        AND (tx_xid, position) > (${at[0]}::text::xid8, ${at[1]}::bigint)
        AND tx_xid < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY tx_xid, position
      LIMIT ${limit}::int`.pipe(Effect.mapError(sqlFailure("read all")))
    const last = rows[rows.length - 1]
    return { events: rows.map(toEvent), checkpoint: last === undefined ? checkpoint : `${last.xid}:${last.position}` }
  })

  const head = sql<{ xid: string; position: bigint }>`
    SELECT tx_xid::text AS xid, position FROM minos_events
    WHERE transaction_id = ${NIL}::uuid AND tx_xid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY tx_xid DESC, position DESC LIMIT 1`.pipe(
    Effect.map((rows) => (rows[0] === undefined ? "0" : `${rows[0].xid}:${rows[0].position}`)),
    Effect.mapError(sqlFailure("head")),
    Effect.withSpan("PgEventStore.head")
  )

  return EventStore.of({ append, readStream, streamVersion, readAll, head } satisfies EventStoreShape)
})

/**
 * Needs the shared pool and the migrated schema (see `Postgres.layerStorage`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<EventStore, never, SqlClient.SqlClient> = Layer.effect(EventStore, make)
