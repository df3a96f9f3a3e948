/**
 * The `DocumentStore` port on PostgreSQL (`minos_documents`). Conditions compile to SQL with every
 * value and field path bound as a parameter; writes join the ambient transaction of the unit of work.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option, type Schema, Stream } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { type Condition, type Ordering, TRUE } from "../query/Condition.ts"
import { makeCompiler } from "./internal/Query.ts"
import { checkQuery } from "../query/Query.ts"
import { describe, kindOf, reasonOf } from "./internal/Errors.ts"
import {
  checkDocument,
  checkKey,
  checkPage,
  type Document,
  DocumentStore,
  DocumentStoreError,
  type DocumentStoreShape,
  type FindOptions,
  fixedFields,
  orderings,
  writeTime
} from "../readmodel/DocumentStore.ts"

interface Row {
  readonly id: string
  readonly document: unknown
  readonly updated_ms: bigint | number | string
}

const toDocument = (r: Row): Document => ({ id: r.id, document: r.document, updatedAt: Number(r.updated_ms) })

const sqlFailure = (what: string) => (e: SqlError.SqlError) =>
  new DocumentStoreError({ reason: reasonOf(e), message: describe(what, e), cause: e })

const invalid = (reason: "InvalidInput" | "InvalidQuery", message: string) => new DocumentStoreError({ reason, message })

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const updatedMs = sql`(extract(epoch FROM s.updated_at) * 1000)::bigint`
  // ids order by code point, as LMDB's keys do, whatever the database's collation
  const { compile, orderBy } = makeCompiler(sql, {
    id: { json: sql`to_jsonb(s.id)`, text: sql`s.id` },
    updatedAt: { json: sql`to_jsonb(${updatedMs})`, text: sql`${updatedMs}::text` }
  }, sql`s.id COLLATE "C"`)

  const put = Effect.fn("PgDocumentStore.put")(function*(collection: string, id: string, document: unknown, now?: number) {
    const problem = checkKey(collection, id) ?? checkDocument(document) ?? (now === undefined || Number.isFinite(now) ? undefined : "The write time is not a number")
    if (problem !== undefined) return yield* Effect.fail(invalid("InvalidInput", problem))
    const at = yield* writeTime(now)
    yield* sql`INSERT INTO minos_documents (collection, id, document, updated_at)
      VALUES (${collection}::text, ${id}::text, ${JSON.stringify(document)}::jsonb, to_timestamp(${at}::float8 / 1000))
      ON CONFLICT (collection, id) DO UPDATE SET document = EXCLUDED.document, updated_at = EXCLUDED.updated_at`.pipe(Effect.mapError(sqlFailure("put")))
  })

  const get = Effect.fn("PgDocumentStore.get")(function*(collection: string, id: string) {
    const problem = checkKey(collection, id)
    if (problem !== undefined) return yield* Effect.fail(invalid("InvalidInput", problem))
    const rows = yield* sql<Row>`SELECT s.id, s.document, ${updatedMs} AS updated_ms FROM minos_documents s
      WHERE s.collection = ${collection}::text AND s.id = ${id}::text`.pipe(Effect.mapError(sqlFailure("get")))
    return Option.map(Option.fromUndefinedOr(rows[0]), toDocument)
  })

  const remove = Effect.fn("PgDocumentStore.remove")(function*(collection: string, id: string) {
    const problem = checkKey(collection, id)
    if (problem !== undefined) return yield* Effect.fail(invalid("InvalidInput", problem))
    const rows = yield* sql`DELETE FROM minos_documents WHERE collection = ${collection}::text AND id = ${id}::text RETURNING 1 AS ok`.pipe(
      Effect.mapError(sqlFailure("remove"))
    )
    return rows.length > 0
  })

  /** The WHERE clause, once the collection and every path are checked. */
  const where = (collection: string, condition: Condition, ordering: ReadonlyArray<Ordering>, schema: Schema.Top | undefined) => {
    const problem = checkKey(collection) ?? checkQuery(schema?.ast, condition, ordering, fixedFields)
    return problem === undefined
      ? Effect.succeed(sql`s.collection = ${collection}::text AND (${compile(condition)})`)
      : Effect.fail(invalid("InvalidQuery", problem))
  }

  const find = (collection: string, options: FindOptions): Stream.Stream<Document, DocumentStoreError> =>
    Stream.unwrap(Effect.gen(function*() {
      const page = checkPage(options)
      if (page !== undefined) return yield* Effect.fail(invalid("InvalidQuery", page))
      const ordering = orderings(options.ordering)
      const filter = yield* where(collection, options.condition, ordering, options.schema)
      const limit = options.limit === undefined ? sql`` : sql`LIMIT ${options.limit}::bigint`
      const offset = options.offset === undefined ? sql`` : sql`OFFSET ${options.offset}::bigint`
      return sql<Row>`SELECT s.id, s.document, ${updatedMs} AS updated_ms FROM minos_documents s WHERE ${filter}
        ORDER BY ${orderBy(ordering)} ${limit} ${offset}`.stream.pipe(Stream.map(toDocument), Stream.mapError(sqlFailure("find")))
    })).pipe(Stream.withSpan("PgDocumentStore.find"))

  const count = Effect.fn("PgDocumentStore.count")(function*(collection: string, condition: Condition = TRUE, schema?: Schema.Top) {
    const filter = yield* where(collection, condition, [], schema)
    const rows = yield* sql<{ n: number | string }>`SELECT count(*)::int AS n FROM minos_documents s WHERE ${filter}`.pipe(Effect.mapError(sqlFailure("count")))
    return Number(rows[0]?.n ?? 0)
  })

  return DocumentStore.of({ put, get, remove, find, count } satisfies DocumentStoreShape)
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<DocumentStore, never, SqlClient.SqlClient> = Layer.effect(DocumentStore, make)
