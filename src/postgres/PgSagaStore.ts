/**
 * The `SagaStore` port on PostgreSQL (`minos_saga_executions`), for services that run several
 * instances: every instance sees every execution, and the revision check in `put` keeps two of them
 * (or a reply and a timeout) from both moving one execution.
 *
 * ```sql
 * minos_saga_executions (id uuid PRIMARY KEY, saga text, version int, status text,
 *   deadline timestamptz NULL, data jsonb, created_at timestamptz, updated_at timestamptz, revision int)
 * -- indexes: (status, created_at, id) for list; (deadline, id) WHERE status = 'paused' for due
 * ```
 *
 * **Details**
 *
 * - `make` creates the table and its indexes when missing, in one transaction under an advisory lock
 *   with a stable key, so instances starting together do not race. It also creates the schema the
 *   connection's `search_path` names when that does not exist yet (`Postgres.layer` only sets it).
 *   The storage migrations (`minos_migrations`) do not include this table: the saga store may live
 *   in another database than the rest of the storage.
 * - `put` replaces everything but `createdAt`, which stays as created (it orders `list`).
 * - Times are kept to the microsecond; epoch milliseconds with a fraction come back rounded to it.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { isUuid } from "../internal/Ids.ts"
import { describe, kindOf, reasonOf } from "./internal/Errors.ts"
import { type ExecutionRecord, ExecutionStatus, SagaStore, SagaStoreError, type SagaStoreShape, checkLimit, checkRecord, error, isStatus } from "../saga/SagaStore.ts"

interface Row {
  readonly id: string
  readonly saga: string
  readonly version: number
  readonly status: ExecutionStatus
  readonly deadline_ms: number | string | null
  readonly data: unknown
  readonly created_ms: number | string
  readonly updated_ms: number | string
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
  error(reasonOf(e), describe(`Saga store ${what}`, e), e)



const schemaPattern = /^[a-z_][a-z0-9_]{0,62}$/

/** The first schema of a `search_path` setting that names one (not `$user`), unquoted. */
const firstSchema = (searchPath: string): string | undefined => {
  for (const raw of searchPath.split(",")) {
    const entry = raw.trim()
    const name = entry.startsWith("\"") && entry.endsWith("\"") && entry.length >= 2 ? entry.slice(1, -1).replace(/""/g, "\"") : entry
    if (name === "$user" || name.length === 0) continue
    return schemaPattern.test(name) ? name : undefined
  }
  return undefined
}

/**
 * Creates the schema, table and indexes when missing (idempotent, safe with several instances
 * starting at once), then serves the port over the pool.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`SELECT pg_advisory_xact_lock(hashtext('effect-minos:saga-store'))`
    const [where] = yield* sql<{ schema: string | null; path: string }>`SELECT current_schema() AS schema, current_setting('search_path') AS path`
    if (where !== undefined && where.schema === null) {
      const missing = firstSchema(where.path)
      if (missing !== undefined) yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${missing}"`)
    }
    yield* sql`CREATE TABLE IF NOT EXISTS minos_saga_executions (
      id uuid PRIMARY KEY,
      saga text NOT NULL,
      version integer NOT NULL CHECK (version > 0),
      status text NOT NULL CHECK (status IN ('created', 'running', 'paused', 'finished', 'errored')),
      deadline timestamptz NULL,
      data jsonb NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      revision integer NOT NULL CHECK (revision > 0)
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS minos_saga_executions_status ON minos_saga_executions (status, created_at, id)`
    yield* sql`CREATE INDEX IF NOT EXISTS minos_saga_executions_due ON minos_saga_executions (deadline, id) WHERE status = 'paused'`
  }))

  const columns = sql.literal(`id, saga, version, status, data, revision,
    (extract(epoch FROM deadline) * 1000)::float8 AS deadline_ms,
    (extract(epoch FROM created_at) * 1000)::float8 AS created_ms,
    (extract(epoch FROM updated_at) * 1000)::float8 AS updated_ms`)
  const ts = (ms: number | null) => sql`to_timestamp(${ms}::float8 / 1000)`
  const invalid = (message: string) => Effect.fail(error("InvalidInput", message))

  const create = Effect.fn("PgSagaStore.create")(function*(r: Omit<ExecutionRecord, "revision">) {
    const problem = checkRecord(r)
    if (problem !== undefined) return yield* invalid(problem)
    const rows = yield* sql<Row>`INSERT INTO minos_saga_executions (id, saga, version, status, deadline, data, created_at, updated_at, revision)
      VALUES (${r.id}::uuid, ${r.saga}::text, ${r.version}::int, ${r.status}::text, ${ts(r.deadline)}, ${JSON.stringify(r.data)}::jsonb,
              ${ts(r.createdAt)}, ${ts(r.updatedAt)}, 1)
      ON CONFLICT (id) DO NOTHING RETURNING ${columns}`.pipe(Effect.mapError(sqlFailure("create")))
    if (rows[0] === undefined) return yield* Effect.fail(error("Conflict", `Execution ${r.id.toLowerCase()} exists`))
    return toRecord(rows[0])
  })

  const put = Effect.fn("PgSagaStore.put")(function*(r: Omit<ExecutionRecord, "revision">, expectedRevision: number) {
    const problem = checkRecord(r) ??
      (Number.isInteger(expectedRevision) && expectedRevision >= 1 ? undefined : `The expected revision must be a positive integer, got ${expectedRevision}`)
    if (problem !== undefined) return yield* invalid(problem)
    const rows = yield* sql<Row>`UPDATE minos_saga_executions
      SET saga = ${r.saga}::text, version = ${r.version}::int, status = ${r.status}::text, deadline = ${ts(r.deadline)},
          data = ${JSON.stringify(r.data)}::jsonb, updated_at = ${ts(r.updatedAt)}, revision = revision + 1
      WHERE id = ${r.id}::uuid AND revision = ${expectedRevision}::int
      RETURNING ${columns}`.pipe(Effect.mapError(sqlFailure("put")))
    if (rows[0] !== undefined) return toRecord(rows[0])
    const current = yield* sql<{ revision: number }>`SELECT revision FROM minos_saga_executions WHERE id = ${r.id}::uuid`.pipe(
      Effect.mapError(sqlFailure("put"))
    )
    const id = r.id.toLowerCase()
    return yield* Effect.fail(current[0] === undefined
      ? error("NotFound", `No execution ${id}`)
      : error("Conflict", `Execution ${id} is at revision ${current[0].revision}, not ${expectedRevision}`))
  })

  const get = Effect.fn("PgSagaStore.get")(function*(id: string) {
    if (typeof id !== "string" || !isUuid(id)) return Option.none()
    const rows = yield* sql<Row>`SELECT ${columns} FROM minos_saga_executions WHERE id = ${id}::uuid`.pipe(Effect.mapError(sqlFailure("get")))
    return Option.map(Option.fromUndefinedOr(rows[0]), toRecord)
  })

  const list = Effect.fn("PgSagaStore.list")(function*(
    options?: { readonly status?: ExecutionStatus | undefined; readonly saga?: string | undefined; readonly limit?: number | undefined }
  ) {
    const limit = options?.limit ?? 1000
    const problem = checkLimit(limit) ?? (options?.status === undefined || isStatus(options.status) ? undefined : `Unknown execution status ${JSON.stringify(options.status)}`)
    if (problem !== undefined) return yield* invalid(problem)
    const status = options?.status ?? null
    const saga = options?.saga ?? null
    const rows = yield* sql<Row>`SELECT ${columns} FROM minos_saga_executions
      WHERE (${status}::text IS NULL OR status = ${status}::text) AND (${saga}::text IS NULL OR saga = ${saga}::text)
      ORDER BY created_at, id LIMIT ${limit}::int`.pipe(Effect.mapError(sqlFailure("list")))
    return rows.map(toRecord)
  })

  const due = Effect.fn("PgSagaStore.due")(function*(at: number, limit = 1000) {
    const problem = checkLimit(limit) ?? (typeof at === "number" && !Number.isNaN(at) ? undefined : `The time must be a number, got ${at}`)
    if (problem !== undefined) return yield* invalid(problem)
    const rows = yield* sql<Row>`SELECT ${columns} FROM minos_saga_executions
      WHERE status = 'paused' AND deadline <= ${ts(at)}
      ORDER BY deadline, id LIMIT ${limit}::int`.pipe(Effect.mapError(sqlFailure("due")))
    return rows.map(toRecord)
  })

  const prune = Effect.fn("PgSagaStore.prune")(function*(olderThan: number) {
    if (typeof olderThan !== "number" || Number.isNaN(olderThan)) return yield* invalid(`The cutoff must be a number, got ${olderThan}`)
    const rows = yield* sql<{ n: number }>`WITH d AS (
        DELETE FROM minos_saga_executions WHERE status IN ('finished', 'errored') AND updated_at < ${ts(olderThan)} RETURNING 1
      ) SELECT count(*)::int AS n FROM d`.pipe(Effect.mapError(sqlFailure("prune")))
    return rows[0]?.n ?? 0
  })

  return SagaStore.of({ create, put, get, list, due, prune } satisfies SagaStoreShape)
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<SagaStore, SqlError.SqlError, SqlClient.SqlClient> = Layer.effect(SagaStore, make)
