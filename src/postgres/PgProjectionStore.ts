/**
 * The `ProjectionStore` port on PostgreSQL (`minos_projection_marks`, `minos_projection_parked`,
 * `minos_projection_state`). `lock` is an upsert that takes the mark row's lock until the ambient
 * transaction ends, so concurrent appliers of one aggregate wait for each other and then read what
 * the other committed.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { describe, reasonOf } from "./internal/Errors.ts"
import {
  checkKey,
  checkValue,
  type Parked,
  ProjectionStore,
  ProjectionStoreError,
  type ProjectionStoreShape
} from "../readmodel/ProjectionStore.ts"

interface ParkedRow {
  readonly projection: string
  readonly aggregate_id: string
  readonly version: number
  readonly event: unknown
  readonly parked_ms: bigint | number | string
}

const toParked = (r: ParkedRow): Parked => ({
  projection: r.projection,
  aggregateId: r.aggregate_id,
  version: r.version,
  event: r.event,
  parkedAt: Number(r.parked_ms)
})

const sqlFailure = (what: string) => (error: SqlError.SqlError) =>
  new ProjectionStoreError({ reason: reasonOf(error), message: describe(what, error), cause: error })

const invalid = (message: string) => new ProjectionStoreError({ reason: "InvalidInput", message })

const check = (problem: string | undefined) => (problem === undefined ? Effect.void : Effect.fail(invalid(problem)))

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const parkedCols = sql.literal(`projection, aggregate_id, version, event, (extract(epoch FROM parked_at) * 1000)::bigint AS parked_ms`)

  const lock = Effect.fn("PgProjectionStore.lock")(function*(projection: string, aggregateId: string) {
    yield* check(checkKey(projection, aggregateId))
    // DO UPDATE (not DO NOTHING) so the row is locked and returned whether it existed or not
    const rows = yield* sql<{ version: number }>`INSERT INTO minos_projection_marks (projection, aggregate_id, version)
      VALUES (${projection}::text, ${aggregateId}::text, 0)
      ON CONFLICT (projection, aggregate_id) DO UPDATE SET version = minos_projection_marks.version
      RETURNING version`.pipe(Effect.mapError(sqlFailure("lock")))
    return rows[0]?.version ?? 0
  })

  const setMark = Effect.fn("PgProjectionStore.setMark")(function*(projection: string, aggregateId: string, version: number) {
    yield* check(checkKey(projection, aggregateId, version))
    yield* sql`INSERT INTO minos_projection_marks (projection, aggregate_id, version)
      VALUES (${projection}::text, ${aggregateId}::text, ${version}::int)
      ON CONFLICT (projection, aggregate_id) DO UPDATE SET version = EXCLUDED.version`.pipe(Effect.mapError(sqlFailure("setMark")))
  })

  const mark = Effect.fn("PgProjectionStore.mark")(function*(projection: string, aggregateId: string) {
    yield* check(checkKey(projection, aggregateId))
    const rows = yield* sql<{ version: number }>`SELECT version FROM minos_projection_marks
      WHERE projection = ${projection}::text AND aggregate_id = ${aggregateId}::text`.pipe(Effect.mapError(sqlFailure("mark")))
    return rows[0]?.version ?? 0
  })

  const park = Effect.fn("PgProjectionStore.park")(function*(entry: Parked) {
    yield* check(checkKey(entry.projection, entry.aggregateId, entry.version) ?? checkValue(entry.event) ??
      (Number.isFinite(entry.parkedAt) ? undefined : "parkedAt is not a number"))
    yield* sql`INSERT INTO minos_projection_parked (projection, aggregate_id, version, event, parked_at)
      VALUES (${entry.projection}::text, ${entry.aggregateId}::text, ${entry.version}::int, ${JSON.stringify(entry.event)}::jsonb,
        to_timestamp(${entry.parkedAt}::float8 / 1000))
      ON CONFLICT DO NOTHING`.pipe(Effect.mapError(sqlFailure("park")))
  })

  const unpark = Effect.fn("PgProjectionStore.unpark")(function*(projection: string, aggregateId: string, version: number) {
    yield* check(checkKey(projection, aggregateId, version))
    const rows = yield* sql<ParkedRow>`DELETE FROM minos_projection_parked
      WHERE projection = ${projection}::text AND aggregate_id = ${aggregateId}::text AND version = ${version}::int
      RETURNING ${parkedCols}`.pipe(Effect.mapError(sqlFailure("unpark")))
    return Option.map(Option.fromUndefinedOr(rows[0]), toParked)
  })

  const parked = Effect.fn("PgProjectionStore.parked")(function*(projection: string, options?: { readonly limit?: number | undefined }) {
    yield* check(checkKey(projection))
    const limit = options?.limit ?? 1000
    if (!Number.isSafeInteger(limit) || limit < 0) return yield* Effect.fail(invalid(`limit must be a non-negative integer, got ${limit}`))
    const rows = yield* sql<ParkedRow>`SELECT ${parkedCols} FROM minos_projection_parked WHERE projection = ${projection}::text
      ORDER BY aggregate_id COLLATE "C", version LIMIT ${limit}::bigint`.pipe(Effect.mapError(sqlFailure("parked")))
    return rows.map(toParked)
  })

  const countParked = Effect.fn("PgProjectionStore.countParked")(function*(projection: string) {
    yield* check(checkKey(projection))
    const rows = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM minos_projection_parked WHERE projection = ${projection}::text`.pipe(
      Effect.mapError(sqlFailure("countParked"))
    )
    return Number(rows[0]?.n ?? 0)
  })

  const getState = Effect.fn("PgProjectionStore.getState")(function*(key: string) {
    yield* check(checkKey(key))
    const rows = yield* sql<{ value: unknown; revision: bigint | number | string }>`SELECT value, revision FROM minos_projection_state WHERE key = ${key}::text`.pipe(
      Effect.mapError(sqlFailure("getState"))
    )
    return Option.map(Option.fromUndefinedOr(rows[0]), (r) => ({ value: r.value, revision: Number(r.revision) }))
  })

  const putState = Effect.fn("PgProjectionStore.putState")(function*(key: string, value: unknown, expectedRevision: number) {
    yield* check(checkKey(key) ?? checkValue(value) ??
      (Number.isSafeInteger(expectedRevision) && expectedRevision >= 0 ? undefined : `expectedRevision must be a non-negative integer, got ${expectedRevision}`))
    const json = JSON.stringify(value)
    const rows = expectedRevision === 0
      ? yield* sql<{ revision: number }>`INSERT INTO minos_projection_state (key, value, revision) VALUES (${key}::text, ${json}::jsonb, 1)
          ON CONFLICT DO NOTHING RETURNING revision`.pipe(Effect.mapError(sqlFailure("putState")))
      : yield* sql<{ revision: number }>`UPDATE minos_projection_state SET value = ${json}::jsonb, revision = revision + 1
          WHERE key = ${key}::text AND revision = ${expectedRevision}::bigint RETURNING revision`.pipe(Effect.mapError(sqlFailure("putState")))
    if (rows[0] === undefined) {
      return yield* Effect.fail(new ProjectionStoreError({ reason: "Conflict", message: `Projection state ${key} is not at revision ${expectedRevision}` }))
    }
    return Number(rows[0].revision)
  })

  const clear = Effect.fn("PgProjectionStore.clear")(function*(projection: string) {
    yield* check(checkKey(projection))
    yield* sql`DELETE FROM minos_projection_marks WHERE projection = ${projection}::text`.pipe(Effect.mapError(sqlFailure("clear")))
    yield* sql`DELETE FROM minos_projection_parked WHERE projection = ${projection}::text`.pipe(Effect.mapError(sqlFailure("clear")))
  })

  return ProjectionStore.of({ lock, setMark, mark, park, unpark, parked, countParked, getState, putState, clear } satisfies ProjectionStoreShape)
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<ProjectionStore, never, SqlClient.SqlClient> = Layer.effect(ProjectionStore, make)
