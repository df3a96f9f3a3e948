/**
 * The `DocumentStore` port on LMDB (the `documents` database of the storage environment). Writes
 * inside a unit of work are staged with it and visible to its own reads; queries scan the collection
 * and evaluate the condition in memory with the same jsonb semantics as PostgreSQL.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option, Stream } from "effect"
import { isJson } from "../eventstore/internal/validate.ts"
import { type Condition, type Ordering, TRUE } from "../snapshot/Condition.ts"
import { checkQuery, compareIn, evaluateIn, pathIn } from "../snapshot/internal/query.ts"
import { type DocumentValue, errorMapper, LmdbEnv } from "../storage/internal/lmdb.ts"
import { checkKey, type Document, DocumentStore, DocumentStoreError, type DocumentStoreShape, type FindOptions, fixedFields } from "./DocumentStore.ts"

const mapError = (what: string) =>
  errorMapper(what, (f) => new DocumentStoreError({ reason: f.kind === "Unavailable" ? "Unavailable" : "Unknown", message: f.message, cause: f.cause }))

const invalid = (reason: "InvalidInput" | "InvalidQuery", message: string) => new DocumentStoreError({ reason, message })
const overlayKey = (collection: string, id: string) => `${collection}\u0000${id}`

const lookup = (d: Document) => (path: string): unknown => (path === "id" ? d.id : path === "updatedAt" ? d.updatedAt : pathIn(d.document, path))

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const env = yield* LmdbEnv
  const { dbs } = env

  const put = Effect.fn("LmdbDocumentStore.put")(function*(collection: string, id: string, document: unknown, now: number) {
    const problem = checkKey(collection, id) ?? (isJson(document) ? undefined : "The document is not JSON")
    if (problem !== undefined) return yield* Effect.fail(invalid("InvalidInput", problem))
    const value: DocumentValue = { d: JSON.parse(JSON.stringify(document)), u: now }
    const unit = yield* env.unit
    if (unit === undefined) return yield* env.write((w) => void w.dbs.documents.putSync([collection, id], value), mapError("put"))
    unit.documents.set(overlayKey(collection, id), value)
    unit.ops.push((w) => void w.dbs.documents.putSync([collection, id], value))
  })

  /** The unit's staged value, `null` when it removed the document, `undefined` when it did not touch it. */
  const staged = (collection: string, id: string) =>
    Effect.map(env.unit, (unit) => unit?.documents.get(overlayKey(collection, id)))

  const get = Effect.fn("LmdbDocumentStore.get")(function*(collection: string, id: string) {
    const problem = checkKey(collection, id)
    if (problem !== undefined) return yield* Effect.fail(invalid("InvalidInput", problem))
    const mine = yield* staged(collection, id)
    const value = mine !== undefined ? mine : yield* env.read(() => dbs.documents.get([collection, id]), mapError("get"))
    return value === null || value === undefined ? Option.none<Document>() : Option.some<Document>({ id, document: value.d, updatedAt: value.u })
  })

  const remove = Effect.fn("LmdbDocumentStore.remove")(function*(collection: string, id: string) {
    const problem = checkKey(collection, id)
    if (problem !== undefined) return yield* Effect.fail(invalid("InvalidInput", problem))
    const unit = yield* env.unit
    if (unit === undefined) return yield* env.write((w) => w.dbs.documents.removeSync([collection, id]), mapError("remove"))
    const existed = Option.isSome(yield* get(collection, id))
    unit.documents.set(overlayKey(collection, id), null)
    unit.ops.push((w) => void w.dbs.documents.removeSync([collection, id]))
    return existed
  })

  /** Every document of the collection as this fiber sees it (committed, then the unit's changes). */
  const scan = (collection: string) =>
    Effect.gen(function*() {
      const unit = yield* env.unit
      const committed = yield* env.read(() => {
        const out: Array<Document> = []
        for (const { key, value } of dbs.documents.getRange({ start: [collection], end: [collection, "\uffff"] })) {
          out.push({ id: key[1], document: value.d, updatedAt: value.u })
        }
        return out
      }, mapError("find"))
      if (unit === undefined || unit.documents.size === 0) return committed
      const byId = new Map(committed.map((d) => [d.id, d]))
      for (const [k, v] of unit.documents) {
        const [c, id] = k.split("\u0000") as [string, string]
        if (c !== collection) continue
        if (v === null) byId.delete(id)
        else byId.set(id, { id, document: v.d, updatedAt: v.u })
      }
      return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    })

  const select = (collection: string, condition: Condition, ordering: ReadonlyArray<Ordering>, schema: FindOptions["schema"]) =>
    Effect.gen(function*() {
      const problem = checkKey(collection) ?? checkQuery(schema?.ast, condition, ordering, fixedFields)
      if (problem !== undefined) return yield* Effect.fail(invalid("InvalidQuery", problem))
      const matching = (yield* scan(collection)).filter((d) => evaluateIn(condition, lookup(d)) === true)
      return ordering.length === 0 ? matching : matching.sort((a, b) => compareIn(ordering, lookup(a), lookup(b)))
    })

  const find = (collection: string, options: FindOptions): Stream.Stream<Document, DocumentStoreError> =>
    Stream.unwrap(Effect.gen(function*() {
      const ordering = options.ordering === undefined ? [] : Array.isArray(options.ordering) ? options.ordering : [options.ordering as Ordering]
      for (const [k, v] of [["limit", options.limit], ["offset", options.offset]] as const) {
        if (v !== undefined && (!Number.isInteger(v) || v < 0)) return yield* Effect.fail(invalid("InvalidQuery", `${k} must be a non-negative integer, got ${v}`))
      }
      const all = yield* select(collection, options.condition, ordering, options.schema)
      const from = options.offset ?? 0
      return Stream.fromIterable(all.slice(from, options.limit === undefined ? undefined : from + options.limit))
    })).pipe(Stream.withSpan("LmdbDocumentStore.find"))

  const count = Effect.fn("LmdbDocumentStore.count")(function*(collection: string, condition: Condition = TRUE) {
    return (yield* select(collection, condition, [], undefined)).length
  })

  return DocumentStore.of({ put, get, remove, find, count } satisfies DocumentStoreShape)
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<DocumentStore, never, LmdbEnv> = Layer.effect(DocumentStore, make)
