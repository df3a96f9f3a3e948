/**
 * The `SagaStore` port on PostgreSQL (`minos_saga_executions`), for services that run several
 * instances: every instance sees every execution, and the revision check in `put` keeps two of them
 * (or a reply and a timeout) from both moving one execution.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { isUuid } from "../eventstore/EventStore.ts"
import { isJson } from "../eventstore/internal/validate.ts"
import { describe, kindOf } from "../storage/internal/pgErrors.ts"
import { type ExecutionRecord, type ExecutionStatus, SagaStore, SagaStoreError, type SagaStoreShape } from "./SagaStore.ts"

interface Row {
  readonly id: string
  readonly saga: string
  readonly version: number
  readonly status: ExecutionStatus
  readonly deadline_ms: bigint | number | null
  readonly data: unknown
  readonly created_ms: bigint | number
  readonly updated_ms: bigint | number
  readonly revision: number
}

const toRecord = (r: Row): ExecutionRecord => ({
  id: r.id,
  saga: r.saga,
  version: r.version,
  status: r.status,
  deadline: r.deadline_ms === null ? null : Number(r.deadline_ms),
  data: r.data,
  createdAt: Number(r.created_ms),
  updatedAt: Number(r.updated_ms),
  revision: r.revision
})

const sqlFailure = (what: string) => (e: SqlError.SqlError) =>
  new SagaStoreError({ reason: kindOf(e) === "Conflict" ? "Conflict" : kindOf(e) === "Unavailable" ? "Unavailable" : "Unknown", message: describe(what, e), cause: e })

const invalid = (r: Omit<ExecutionRecord, "revision">): string | undefined => {
  if (!isUuid(r.id)) return `Execution id ${JSON.stringify(r.id)} is not a UUID`
  if (typeof r.saga !== "string" || r.saga.length === 0) return "The saga name is empty"
  if (!Number.isInteger(r.version) || r.version < 1) return `Invalid version ${r.version}`
  if (r.deadline !== null && !Number.isFinite(r.deadline)) return "Invalid deadline"
  if (!isJson(r.data)) return "The execution data is not JSON"
  return undefined
}

/**
 * Creates the table when missing (idempotent, safe with several instances starting at once).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`SELECT pg_advisory_xact_lock(hashtext('effect-minos:saga-store'))`
    yield* sql`CREATE TABLE IF NOT EXISTS minos_saga_executions (
      id uuid PRIMARY KEY,
      saga text NOT NULL,
      version integer NOT NULL,
      status text NOT NULL CHECK (status IN ('created', 'running', 'paused', 'finished', 'errored')),
      deadline timestamptz NULL,
      data jsonb NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      revision integer NOT NULL
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS minos_saga_executions_status ON minos_saga_executions (status, created_at)`
    yield* sql`CREATE INDEX IF NOT EXISTS minos_saga_executions_due ON minos_saga_executions (deadline) WHERE status = 'paused'`
  }))
  const cols = sql.literal(`id, saga, version, status, data, revision,
    (extract(epoch FROM deadline) * 1000)::bigint AS deadline_ms,
    (extract(epoch FROM created_at) * 1000)::bigint AS created_ms, (extract(epoch FROM updated_at) * 1000)::bigint AS updated_ms`)
  const ts = (ms: number | null) => sql`to_timestamp(${ms}::float8 / 1000)`

  const create = Effect.fn("PgSagaStore.create")(function*(r: Omit<ExecutionRecord, "revision">) {
    const problem = invalid(r)
    if (problem !== undefined) return yield* Effect.fail(new SagaStoreError({ reason: "InvalidInput", message: problem }))
    const rows = yield* sql<Row>`INSERT INTO minos_saga_executions (id, saga, version, status, deadline, data, created_at, updated_at, revision)
      VALUES (${r.id}::uuid, ${r.saga}::text, ${r.version}::int, ${r.status}::text, ${ts(r.deadline)}, ${JSON.stringify(r.data)}::jsonb, ${ts(r.createdAt)}, ${ts(r.updatedAt)}, 1)
      ON CONFLICT (id) DO NOTHING RETURNING ${cols}`.pipe(Effect.mapError(sqlFailure("create")))
    if (rows[0] === undefined) return yield* Effect.fail(new SagaStoreError({ reason: "Conflict", message: `Execution ${r.id} exists` }))
    return toRecord(rows[0])
  })

  const put = Effect.fn("PgSagaStore.put")(function*(r: Omit<ExecutionRecord, "revision">, expectedRevision: number) {
    const problem = invalid(r)
    if (problem !== undefined) return yield* Effect.fail(new SagaStoreError({ reason: "InvalidInput", message: problem }))
    const rows = yield* sql<Row>`UPDATE minos_saga_executions SET status = ${r.status}::text, deadline = ${ts(r.deadline)},
        data = ${JSON.stringify(r.data)}::jsonb, updated_at = ${ts(r.updatedAt)}, revision = revision + 1
      WHERE id = ${r.id}::uuid AND revision = ${expectedRevision}::int RETURNING ${cols}`.pipe(Effect.mapError(sqlFailure("put")))
    if (rows[0] !== undefined) return toRecord(rows[0])
    const exists = yield* sql`SELECT 1 FROM minos_saga_executions WHERE id = ${r.id}::uuid`.pipe(Effect.mapError(sqlFailure("put")))
    return yield* Effect.fail(exists.length === 0
      ? new SagaStoreError({ reason: "NotFound", message: `No execution ${r.id}` })
      : new SagaStoreError({ reason: "Conflict", message: `Execution ${r.id} moved past revision ${expectedRevision}` }))
  })

  const get = Effect.fn("PgSagaStore.get")(function*(id: string) {
    if (!isUuid(id)) return Option.none()
    const rows = yield* sql<Row>`SELECT ${cols} FROM minos_saga_executions WHERE id = ${id}::uuid`.pipe(Effect.mapError(sqlFailure("get")))
    return Option.map(Option.fromUndefinedOr(rows[0]), toRecord)
  })

  const list = Effect.fn("PgSagaStore.list")(function*(options?: { readonly status?: ExecutionStatus | undefined; readonly saga?: string | undefined; readonly limit?: number | undefined }) {
    const rows = yield* sql<Row>`SELECT ${cols} FROM minos_saga_executions
      WHERE (${options?.status ?? null}::text IS NULL OR status = ${options?.status ?? null}::text)
        AND (${options?.saga ?? null}::text IS NULL OR saga = ${options?.saga ?? null}::text)
      ORDER BY created_at, id LIMIT ${options?.limit ?? 1000}::int`.pipe(Effect.mapError(sqlFailure("list")))
    return rows.map(toRecord)
  })

  const due = Effect.fn("PgSagaStore.due")(function*(at: number, limit = 1000) {
    const rows = yield* sql<Row>`SELECT ${cols} FROM minos_saga_executions
      WHERE status = 'paused' AND deadline <= ${ts(at)} ORDER BY deadline LIMIT ${limit}::int`.pipe(Effect.mapError(sqlFailure("due")))
    return rows.map(toRecord)
  })

  const prune = Effect.fn("PgSagaStore.prune")(function*(olderThan: number) {
    const rows = yield* sql<{ n: number }>`WITH d AS (DELETE FROM minos_saga_executions
      WHERE status IN ('finished', 'errored') AND updated_at < ${ts(olderThan)} RETURNING 1) SELECT count(*)::int AS n FROM d`.pipe(Effect.mapError(sqlFailure("prune")))
    return rows[0]?.n ?? 0
  })

  return SagaStore.of({ create, put, get, list, due, prune } satisfies SagaStoreShape)
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<SagaStore, SqlError.SqlError, SqlClient.SqlClient> = Layer.effect(SagaStore, make)
