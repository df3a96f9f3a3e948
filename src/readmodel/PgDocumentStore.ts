/**
 * The `DocumentStore` port on PostgreSQL (`minos_documents`).
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option, Stream } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { isJson } from "../eventstore/internal/validate.ts"
import { type Condition, TRUE } from "../snapshot/Condition.ts"
import { makeCompiler } from "../snapshot/internal/pgQuery.ts"
import { checkQuery } from "../snapshot/internal/query.ts"
import { describe, kindOf } from "../storage/internal/pgErrors.ts"
import { checkKey, type Document, DocumentStore, DocumentStoreError, type DocumentStoreShape, type FindOptions, fixedFields } from "./DocumentStore.ts"

interface Row {
  readonly id: string
  readonly document: unknown
  readonly updated_ms: bigint | number
}

const sqlFailure = (what: string) => (e: SqlError.SqlError) =>
  new DocumentStoreError({ reason: kindOf(e) === "Unavailable" ? "Unavailable" : "Unknown", message: describe(what, e), cause: e })

const invalid = (reason: "InvalidInput" | "InvalidQuery", message: string) => new DocumentStoreError({ reason, message })

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const updatedMs = sql`(extract(epoch FROM s.updated_at) * 1000)::bigint`
  const { compile, orderBy } = makeCompiler(sql, {
    id: { json: sql`to_jsonb(s.id)`, text: sql`s.id` },
    updatedAt: { json: sql`to_jsonb(${updatedMs})`, text: sql`${updatedMs}::text` }
  }, sql`s.id`)

  const put = Effect.fn("PgDocumentStore.put")(function*(collection: string, id: string, document: unknown, now: number) {
    const problem = checkKey(collection, id) ?? (isJson(document) ? undefined : "The document is not JSON")
    if (problem !== undefined) return yield* Effect.fail(invalid("InvalidInput", problem))
    yield* sql`INSERT INTO minos_documents (collection, id, document, updated_at)
      VALUES (${collection}::text, ${id}::text, ${JSON.stringify(document)}::jsonb, to_timestamp(${now}::float8 / 1000))
      ON CONFLICT (collection, id) DO UPDATE SET document = EXCLUDED.document, updated_at = EXCLUDED.updated_at`.pipe(Effect.mapError(sqlFailure("put")))
  })

  const get = Effect.fn("PgDocumentStore.get")(function*(collection: string, id: string) {
    const problem = checkKey(collection, id)
    if (problem !== undefined) return yield* Effect.fail(invalid("InvalidInput", problem))
    const rows = yield* sql<Row>`SELECT s.id, s.document, ${updatedMs} AS updated_ms FROM minos_documents s
      WHERE s.collection = ${collection}::text AND s.id = ${id}::text`.pipe(Effect.mapError(sqlFailure("get")))
    return Option.map(Option.fromUndefinedOr(rows[0]), (r): Document => ({ id: r.id, document: r.document, updatedAt: Number(r.updated_ms) }))
  })

  const remove = Effect.fn("PgDocumentStore.remove")(function*(collection: string, id: string) {
    const problem = checkKey(collection, id)
    if (problem !== undefined) return yield* Effect.fail(invalid("InvalidInput", problem))
    const rows = yield* sql`DELETE FROM minos_documents WHERE collection = ${collection}::text AND id = ${id}::text RETURNING 1 AS ok`.pipe(Effect.mapError(sqlFailure("remove")))
    return rows.length > 0
  })

  const where = (collection: string, condition: Condition, ordering: ReadonlyArray<import("../snapshot/Condition.ts").Ordering>, schema: FindOptions["schema"]) => {
    const problem = checkKey(collection) ?? checkQuery(schema?.ast, condition, ordering, fixedFields)
    return problem === undefined ? Effect.succeed(sql`s.collection = ${collection}::text AND (${compile(condition)})`) : Effect.fail(invalid("InvalidQuery", problem))
  }

  const find = (collection: string, options: FindOptions): Stream.Stream<Document, DocumentStoreError> =>
    Stream.unwrap(Effect.gen(function*() {
      const ordering = options.ordering === undefined ? [] : Array.isArray(options.ordering) ? options.ordering : [options.ordering as import("../snapshot/Condition.ts").Ordering]
      const filter = yield* where(collection, options.condition, ordering, options.schema)
      for (const [k, v] of [["limit", options.limit], ["offset", options.offset]] as const) {
        if (v !== undefined && (!Number.isInteger(v) || v < 0)) return yield* Effect.fail(invalid("InvalidQuery", `${k} must be a non-negative integer, got ${v}`))
      }
      const limit = options.limit === undefined ? sql`` : sql`LIMIT ${options.limit}::int`
      const offset = options.offset === undefined ? sql`` : sql`OFFSET ${options.offset}::int`
      return sql<Row>`SELECT s.id, s.document, ${updatedMs} AS updated_ms FROM minos_documents s WHERE ${filter}
        ORDER BY ${orderBy(ordering)} ${limit} ${offset}`.stream.pipe(
        Stream.map((r): Document => ({ id: r.id, document: r.document, updatedAt: Number(r.updated_ms) })),
        Stream.mapError(sqlFailure("find"))
      )
    })).pipe(Stream.withSpan("PgDocumentStore.find"))

  const count = Effect.fn("PgDocumentStore.count")(function*(collection: string, condition: Condition = TRUE) {
    const filter = yield* where(collection, condition, [], undefined)
    const rows = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM minos_documents s WHERE ${filter}`.pipe(Effect.mapError(sqlFailure("count")))
    return rows[0]?.n ?? 0
  })

  return DocumentStore.of({ put, get, remove, find, count } satisfies DocumentStoreShape)
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<DocumentStore, never, SqlClient.SqlClient> = Layer.effect(DocumentStore, make)
