/**
 * The `Inbox` port on PostgreSQL (`minos_inbox`, `minos_dead_letters`).
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { describe, kindOf, reasonOf } from "./internal/Errors.ts"
import { type DeadLetter, Inbox, InboxError, type InboxShape } from "../queue/Inbox.ts"

interface Row {
  readonly id: bigint
  readonly consumer_group: string
  readonly topic: string
  readonly key: string | null
  readonly value: string
  readonly headers: Record<string, string>
  readonly identifier: string | null
  readonly error: string
  readonly attempts: number
  readonly first_ms: bigint | number
  readonly last_ms: bigint | number
}

const toLetter = (r: Row): DeadLetter => ({
  id: Number(r.id),
  group: r.consumer_group,
  topic: r.topic,
  key: r.key,
  value: r.value,
  headers: r.headers,
  identifier: r.identifier,
  error: r.error,
  attempts: r.attempts,
  firstFailedAt: Number(r.first_ms),
  lastFailedAt: Number(r.last_ms)
})

const sqlFailure = (what: string) => (error: SqlError.SqlError) =>
  new InboxError({ reason: reasonOf(error), message: describe(what, error), cause: error })

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const columns = sql.literal(`id, consumer_group, topic, key, value, headers, identifier, error, attempts,
    (extract(epoch FROM first_failed_at) * 1000)::bigint AS first_ms, (extract(epoch FROM last_failed_at) * 1000)::bigint AS last_ms`)

  const claim = Effect.fn("PgInbox.claim")(function*(group: string, topic: string, identifier: string, now: number) {
    const rows = yield* sql`INSERT INTO minos_inbox (consumer_group, topic, identifier, handled_at)
      VALUES (${group}::text, ${topic}::text, ${identifier}::text, to_timestamp(${now}::float8 / 1000))
      ON CONFLICT DO NOTHING RETURNING 1 AS ok`.pipe(Effect.mapError(sqlFailure("claim")))
    return rows.length === 1
  })

  const release = Effect.fn("PgInbox.release")(function*(group: string, topic: string, identifier: string) {
    yield* sql`DELETE FROM minos_inbox WHERE consumer_group = ${group}::text AND topic = ${topic}::text AND identifier = ${identifier}::text`.pipe(
      Effect.mapError(sqlFailure("release"))
    )
  })

  const deadLetter = Effect.fn("PgInbox.deadLetter")(function*(l: Omit<DeadLetter, "id">) {
    const rows = yield* sql<{ id: bigint }>`INSERT INTO minos_dead_letters
        (consumer_group, topic, key, value, headers, identifier, error, attempts, first_failed_at, last_failed_at)
      VALUES (${l.group}::text, ${l.topic}::text, ${l.key}::text, ${l.value}::text, ${JSON.stringify(l.headers)}::jsonb, ${l.identifier}::text,
              ${l.error}::text, ${l.attempts}::int, to_timestamp(${l.firstFailedAt}::float8 / 1000), to_timestamp(${l.lastFailedAt}::float8 / 1000))
      RETURNING id`.pipe(Effect.mapError(sqlFailure("dead letter")))
    return Number(rows[0]!.id)
  })

  const listDeadLetters = Effect.fn("PgInbox.listDeadLetters")(function*(options?: { readonly topic?: string | undefined; readonly limit?: number | undefined }) {
    const rows = yield* sql<Row>`SELECT ${columns} FROM minos_dead_letters
      WHERE (${options?.topic ?? null}::text IS NULL OR topic = ${options?.topic ?? null}::text)
      ORDER BY id LIMIT ${options?.limit ?? 1000}::int`.pipe(Effect.mapError(sqlFailure("list dead letters")))
    return rows.map(toLetter)
  })

  const getDeadLetter = Effect.fn("PgInbox.getDeadLetter")(function*(id: number) {
    const rows = yield* sql<Row>`SELECT ${columns} FROM minos_dead_letters WHERE id = ${id}::bigint`.pipe(Effect.mapError(sqlFailure("get dead letter")))
    if (rows[0] === undefined) return yield* Effect.fail(new InboxError({ reason: "NotFound", message: `No dead letter ${id}` }))
    return toLetter(rows[0])
  })

  const removeDeadLetter = Effect.fn("PgInbox.removeDeadLetter")(function*(id: number) {
    const rows = yield* sql`DELETE FROM minos_dead_letters WHERE id = ${id}::bigint RETURNING id`.pipe(Effect.mapError(sqlFailure("remove dead letter")))
    if (rows.length === 0) return yield* Effect.fail(new InboxError({ reason: "NotFound", message: `No dead letter ${id}` }))
  })

  const prune = Effect.fn("PgInbox.prune")(function*(olderThan: number) {
    const rows = yield* sql<{ n: number }>`WITH d AS (DELETE FROM minos_inbox WHERE handled_at < to_timestamp(${olderThan}::float8 / 1000) RETURNING 1)
      SELECT count(*)::int AS n FROM d`.pipe(Effect.mapError(sqlFailure("prune")))
    return rows[0]?.n ?? 0
  })

  return Inbox.of({ claim, release, deadLetter, listDeadLetters, getDeadLetter, removeDeadLetter, prune } satisfies InboxShape)
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<Inbox, never, SqlClient.SqlClient> = Layer.effect(Inbox, make)
