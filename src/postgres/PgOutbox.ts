/**
 * The `Outbox` port on PostgreSQL (`minos_outbox`).
 *
 * `process` runs in one SQL transaction: it takes the relay lock (a transaction-scoped advisory lock,
 * so only one relay publishes at a time and per-key order holds across processes; the others return 0
 * and take over as soon as it stops), claims the oldest rows `FOR UPDATE SKIP LOCKED`, publishes, and
 * deletes them before committing (after a partial failure, only the acknowledged ones). A crash before the commit leaves the rows for the next relay:
 * at-least-once, nothing lost.
 *
 * Relays wake on `NOTIFY` (a statement trigger fires when rows are inserted or released by a minos
 * transaction's commit), with polling as the fallback.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Latch, Layer, Result, Schedule, Stream } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { isValidTopic, type OutgoingRecord } from "../broker/Broker.ts"
import { isUuid, NIL } from "../internal/Ids.ts"
import { describe, kindOf, reasonOf } from "./internal/Errors.ts"
import { outboxChannel } from "./internal/Migrations.ts"
import { acknowledgedRows, Outbox, OutboxError, type OutboxRow, type OutboxShape } from "../queue/Outbox.ts"

interface Row {
  readonly id: bigint
  readonly topic: string
  readonly key: string | null
  readonly value: string
  readonly headers: Record<string, string>
  readonly created_ms: bigint | number
}

const sqlFailure = (what: string) => (error: SqlError.SqlError) =>
  new OutboxError({ reason: reasonOf(error), message: describe(what, error), cause: error })

/** Checks records before anything is written; the message says what is wrong. */
export const checkRecords = (records: ReadonlyArray<OutgoingRecord>): string | undefined => {
  for (const [i, r] of records.entries()) {
    if (!isValidTopic(r.topic)) return `Record ${i}: invalid topic ${JSON.stringify(r.topic)}`
    if (typeof r.value !== "string") return `Record ${i}: value must be a string`
    if (r.key !== null && typeof r.key !== "string") return `Record ${i}: key must be a string or null`
    for (const [k, v] of Object.entries(r.headers)) if (typeof v !== "string") return `Record ${i}: header ${k} is not a string`
  }
  return undefined
}

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const pg = yield* PgClient.PgClient
    const wake = yield* Latch.make(false)
    const channel = outboxChannel(schema)

    // a dropped LISTEN connection is re-established; polling covers the gap
    yield* pg.listen(channel).pipe(
      Effect.flatMap((queue) => Stream.fromQueue(queue).pipe(Stream.runForEach(() => wake.open))),
      Effect.scoped,
      Effect.retry(Schedule.min([Schedule.exponential("200 millis"), Schedule.spaced("10 seconds")])),
      Effect.catchCause(() => Effect.void),
      Effect.forkScoped
    )

    const stage = Effect.fn("PgOutbox.stage")(function*(records: ReadonlyArray<OutgoingRecord>, options?: { readonly transaction?: string | undefined }) {
      if (records.length === 0) return
      const problem = checkRecords(records)
      if (problem !== undefined) return yield* Effect.fail(new OutboxError({ reason: "InvalidInput", message: problem }))
      const tx = options?.transaction ?? NIL
      if (!isUuid(tx)) return yield* Effect.fail(new OutboxError({ reason: "InvalidInput", message: "Transaction id is not a UUID" }))
      const payload = JSON.stringify(records.map((r) => ({ topic: r.topic, key: r.key, value: r.value, headers: r.headers })))
      const inserted = yield* sql<{ n: number }>`
        WITH ins AS (
          INSERT INTO minos_outbox (topic, key, value, headers, transaction_id)
          SELECT r.topic, r.key, r.value, r.headers, ${tx}::uuid
          FROM ROWS FROM (jsonb_to_recordset(${payload}::jsonb) AS (topic text, key text, value text, headers jsonb)) WITH ORDINALITY AS r(topic, key, value, headers, ord)
          WHERE ${tx}::uuid = ${NIL}::uuid OR EXISTS (SELECT 1 FROM minos_transactions WHERE id = ${tx}::uuid AND status = 'pending' FOR SHARE)
          ORDER BY r.ord
          RETURNING 1)
        SELECT count(*)::int AS n FROM ins`.pipe(Effect.mapError(sqlFailure("stage")))
      if ((inserted[0]?.n ?? 0) === 0) {
        return yield* Effect.fail(new OutboxError({ reason: "TransactionClosed", message: `Transaction ${tx} is not pending` }))
      }
    })

    const process = <E, R>(limit: number, publish: (rows: ReadonlyArray<OutboxRow>) => Effect.Effect<void, E, R>) =>
      sql.withTransaction(Effect.gen(function*() {
        const [lock] = yield* sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(hashtext('effect-minos:relay:' || current_schema())) AS ok`
        if (lock?.ok !== true) return 0
        const rows = yield* sql<Row>`
          SELECT id, topic, key, value, headers, (extract(epoch FROM created_at) * 1000)::bigint AS created_ms
          FROM minos_outbox WHERE transaction_id = ${NIL}::uuid
          ORDER BY id LIMIT ${limit}::int FOR UPDATE SKIP LOCKED`
        if (rows.length === 0) return 0
        const claimed = rows.map((r) => ({ id: Number(r.id), topic: r.topic, key: r.key, value: r.value, headers: r.headers, createdAt: Number(r.created_ms) }))
        const published = yield* Effect.result(publish(claimed))
        // a partial failure: delete (and commit) what the broker acknowledged, then fail
        const done = published._tag === "Success" ? claimed : acknowledgedRows(claimed, published.failure)
        if (done.length > 0) yield* sql`DELETE FROM minos_outbox WHERE id = ANY(${done.map((r) => r.id)}::bigint[])`
        return published._tag === "Success" ? Result.succeed(rows.length) : Result.fail(published.failure)
      })).pipe(
        Effect.flatMap((outcome) => typeof outcome === "number" ? Effect.succeed(outcome) : Result.isSuccess(outcome) ? Effect.succeed(outcome.success) : Effect.fail(outcome.failure)),
        Effect.mapError((e) => (typeof e === "object" && e !== null && (e as { _tag?: string })._tag === "SqlError" ? sqlFailure("process")(e as SqlError.SqlError) : e as E)),
        Effect.withSpan("PgOutbox.process")
      )

    const pending = sql<{ n: number }>`SELECT count(*)::int AS n FROM minos_outbox WHERE transaction_id = ${NIL}::uuid`.pipe(
      Effect.map((rows) => rows[0]?.n ?? 0),
      Effect.mapError(sqlFailure("pending"))
    )

    const awaitWork = (maxWaitMs: number) =>
      wake.await.pipe(Effect.timeoutOption(Duration.millis(maxWaitMs)), Effect.andThen(wake.close), Effect.asVoid)

    return Outbox.of({ stage, process, pending, awaitWork } satisfies OutboxShape)
  })

/**
 * @category layers
 * @since 0.1.0
 */
export const layer = (schema: string): Layer.Layer<Outbox, never, SqlClient.SqlClient | PgClient.PgClient> => Layer.effect(Outbox, make(schema))
