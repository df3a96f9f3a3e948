/**
 * The `SnapshotStore` port on PostgreSQL (`minos_snapshots`). Conditions compile to SQL fragments in
 * which every value is a bound parameter and every field path is a checked `text[]` parameter of
 * `document #> …`; nothing from a query is spliced into SQL text. Comparisons are jsonb comparisons,
 * the same semantics the LMDB backend evaluates in memory.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option, Stream } from "effect"
import { SqlClient, type SqlError, type Statement } from "effect/sql"
import { isUuid, NIL } from "../internal/Ids.ts"
import { isJson } from "../internal/Json.ts"
import { chainOf } from "./internal/Chain.ts"
import { describe, kindOf, reasonOf } from "./internal/Errors.ts"
import { makeCompiler } from "./internal/Query.ts"
import { existing, type FindOptions, prepareFind, type Queryable, type SnapshotRecord, SnapshotStore, SnapshotStoreError, type SnapshotStoreShape } from "../snapshot/SnapshotStore.ts"

interface Row {
  readonly aggregate: string
  readonly aggregate_id: string
  readonly version: number
  readonly document: unknown
  readonly deleted: boolean
  readonly created_ms: bigint | number
  readonly updated_ms: bigint | number
  readonly transaction_id: string
}

const toRecord = (r: Row): SnapshotRecord => ({
  aggregate: r.aggregate,
  aggregateId: r.aggregate_id,
  version: r.version,
  document: r.document,
  deleted: r.deleted,
  createdAt: Number(r.created_ms),
  updatedAt: Number(r.updated_ms),
  transactionId: r.transaction_id === NIL ? null : r.transaction_id
})

const sqlFailure = (what: string) => (error: SqlError.SqlError) =>
  new SnapshotStoreError({ reason: reasonOf(error), message: describe(what, error), cause: error })

const invalid = (reason: "InvalidInput" | "InvalidQuery", message: string) => new SnapshotStoreError({ reason, message })

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const columns = sql`s.aggregate, s.aggregate_id, s.version, s.document, s.deleted, s.transaction_id,
    (extract(epoch FROM s.created_at) * 1000)::bigint AS created_ms, (extract(epoch FROM s.updated_at) * 1000)::bigint AS updated_ms`

  const view = (tx: string | undefined) =>
    tx === undefined
      ? Effect.succeed(undefined)
      : Effect.gen(function*() {
        if (!isUuid(tx)) return yield* Effect.fail(invalid("InvalidInput", `Transaction id ${JSON.stringify(tx)} is not a UUID`))
        const chain = yield* chainOf(sql, tx).pipe(Effect.mapError(sqlFailure("read transaction chain")))
        if (chain.length === 0) return yield* Effect.fail(invalid("InvalidInput", `Unknown transaction ${tx}`))
        return [NIL, ...chain.map((c) => c.id)]
      })

  const epochMs = (column: Statement.Fragment) => sql`(extract(epoch FROM ${column}) * 1000)::bigint`
  const { compile, orderBy } = makeCompiler(sql, {
    uuid: { json: sql`to_jsonb(s.aggregate_id::text)`, text: sql`s.aggregate_id::text` },
    version: { json: sql`to_jsonb(s.version)`, text: sql`s.version::text` },
    createdAt: { json: sql`to_jsonb(${epochMs(sql`s.created_at`)})`, text: sql`${epochMs(sql`s.created_at`)}::text` },
    updatedAt: { json: sql`to_jsonb(${epochMs(sql`s.updated_at`)})`, text: sql`${epochMs(sql`s.updated_at`)}::text` }
  }, sql`s.aggregate_id`)

  const put = Effect.fn("PgSnapshotStore.put")(function*(record: SnapshotRecord) {
    if (!isUuid(record.aggregateId)) return yield* Effect.fail(invalid("InvalidInput", `Aggregate id ${JSON.stringify(record.aggregateId)} is not a UUID`))
    if (record.transactionId !== null && !isUuid(record.transactionId)) return yield* Effect.fail(invalid("InvalidInput", "Transaction id is not a UUID"))
    if (!Number.isInteger(record.version) || record.version < 1) return yield* Effect.fail(invalid("InvalidInput", `Invalid version ${record.version}`))
    if (!isJson(record.document)) return yield* Effect.fail(invalid("InvalidInput", "The snapshot document is not JSON"))
    yield* sql`
      INSERT INTO minos_snapshots (aggregate_id, transaction_id, aggregate, version, document, deleted, created_at, updated_at)
      VALUES (${record.aggregateId}::uuid, ${record.transactionId ?? NIL}::uuid, ${record.aggregate}::text, ${record.version}::int,
              ${JSON.stringify(record.document)}::jsonb, ${record.deleted}::boolean,
              to_timestamp(${record.createdAt}::float8 / 1000), to_timestamp(${record.updatedAt}::float8 / 1000))
      ON CONFLICT (aggregate_id, transaction_id) DO UPDATE SET
        aggregate = EXCLUDED.aggregate, version = EXCLUDED.version, document = EXCLUDED.document,
        deleted = EXCLUDED.deleted, updated_at = EXCLUDED.updated_at
      WHERE minos_snapshots.version < EXCLUDED.version`.pipe(Effect.mapError(sqlFailure("put snapshot")))
  })

  const getOption = Effect.fn("PgSnapshotStore.getOption")(function*(
    aggregate: string,
    aggregateId: string,
    options?: { readonly transaction?: string | undefined }
  ) {
    if (!isUuid(aggregateId)) return yield* Effect.fail(invalid("InvalidInput", `Aggregate id ${JSON.stringify(aggregateId)} is not a UUID`))
    const chain = yield* view(options?.transaction)
    const rows = chain === undefined
      ? yield* sql<Row>`SELECT ${columns} FROM minos_snapshots s
          WHERE s.aggregate_id = ${aggregateId}::uuid AND s.transaction_id = ${NIL}::uuid AND s.aggregate = ${aggregate}::text`
      : yield* sql<Row>`SELECT ${columns} FROM minos_snapshots s
          WHERE s.aggregate_id = ${aggregateId}::uuid AND s.transaction_id = ANY(${chain}::uuid[]) AND s.aggregate = ${aggregate}::text
          ORDER BY array_position(${chain}::uuid[], s.transaction_id) DESC LIMIT 1`
    return Option.map(Option.fromUndefinedOr(rows[0]), toRecord)
  }, (effect) => Effect.mapError(effect, (e) => (e._tag === "SqlError" ? sqlFailure("get snapshot")(e) : e)))

  const get = Effect.fn("PgSnapshotStore.get")(function*(aggregate: string, aggregateId: string, options?: { readonly transaction?: string | undefined }) {
    return yield* existing(aggregate, aggregateId, yield* getOption(aggregate, aggregateId, options))
  })

  const find = (aggregate: Queryable, options: FindOptions): Stream.Stream<SnapshotRecord, SnapshotStoreError> =>
    Stream.unwrap(Effect.gen(function*() {
      const prepared = prepareFind(aggregate, options)
      if (!prepared.ok) return yield* Effect.fail(invalid("InvalidQuery", prepared.message))
      const ordering = prepared.ordering
      const chain = yield* view(options.transaction)
      const source = chain === undefined
        ? sql`SELECT * FROM minos_snapshots WHERE aggregate = ${aggregate.name}::text AND transaction_id = ${NIL}::uuid`
        : sql`SELECT DISTINCT ON (aggregate_id) * FROM minos_snapshots
              WHERE aggregate = ${aggregate.name}::text AND transaction_id = ANY(${chain}::uuid[])
              ORDER BY aggregate_id, array_position(${chain}::uuid[], transaction_id) DESC`
      const deleted = options.includeDeleted === true ? sql`TRUE` : sql`NOT s.deleted`
      const limit = options.limit === undefined ? sql`` : sql`LIMIT ${options.limit}::int`
      const statement = sql<Row>`SELECT ${columns} FROM (${source}) s
        WHERE ${deleted} AND (${compile(options.condition)})
        ORDER BY ${orderBy(ordering)} ${limit}`
      return statement.stream.pipe(Stream.map(toRecord), Stream.mapError(sqlFailure("find snapshots")))
    })).pipe(Stream.withSpan("PgSnapshotStore.find"))

  return SnapshotStore.of({ put, get, getOption, find } satisfies SnapshotStoreShape)
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<SnapshotStore, never, SqlClient.SqlClient> = Layer.effect(SnapshotStore, make)
