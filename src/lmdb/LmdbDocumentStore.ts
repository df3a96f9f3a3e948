/**
 * The `DocumentStore` port on LMDB (the `documents` database of the storage environment, keyed
 * `[collection, id]`). Writes inside a unit of work are staged with it and visible to its own reads;
 * queries scan the collection and evaluate the condition in memory with the same jsonb semantics as
 * PostgreSQL.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option, type Schema, Stream } from "effect"
import { type Condition, type Ordering, TRUE } from "../query/Condition.ts"
import { checkQuery, compareIn, evaluateIn, pathIn } from "../query/Query.ts"
import { CorruptData, type DocumentValue, errorMapper, LmdbEnv, type Unit } from "./internal/Env.ts"
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

const mapError = (what: string) => errorMapper(what, (f) => new DocumentStoreError({ reason: f.kind, message: f.message, cause: f.cause }))

const invalid = (reason: "InvalidInput" | "InvalidQuery", message: string) => new DocumentStoreError({ reason, message })

// collection names never hold NUL, so the first one separates the two parts
const overlayKey = (collection: string, id: string) => `${collection}\u0000${id}`

const lookup = (d: Document) => (path: string): unknown => (path === "id" ? d.id : path === "updatedAt" ? d.updatedAt : pathIn(d.document, path))

/** Code-point order, as LMDB orders its (UTF-8) keys and PostgreSQL under `COLLATE "C"`. */
const byId = (a: Document, b: Document): number => Buffer.compare(Buffer.from(a.id), Buffer.from(b.id))

const toDocument = (id: string, value: unknown): Document => {
  if (typeof value !== "object" || value === null || typeof (value as DocumentValue).u !== "number") throw new CorruptData(`document ${JSON.stringify(id)} is not a record`)
  return { id, document: (value as DocumentValue).d, updatedAt: (value as DocumentValue).u }
}

/** What the unit staged for `collection`: id → value, `null` when removed. */
const stagedIn = (unit: Unit | undefined, collection: string): Map<string, DocumentValue | null> => {
  const out = new Map<string, DocumentValue | null>()
  if (unit === undefined) return out
  const prefix = overlayKey(collection, "")
  for (const [k, v] of unit.documents) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v)
  return out
}

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const env = yield* LmdbEnv
  const { dbs } = env

  const put = Effect.fn("LmdbDocumentStore.put")(function*(collection: string, id: string, document: unknown, now?: number) {
    const problem = checkKey(collection, id) ?? checkDocument(document) ?? (now === undefined || Number.isFinite(now) ? undefined : "The write time is not a number")
    if (problem !== undefined) return yield* Effect.fail(invalid("InvalidInput", problem))
    // a copy: later changes to the caller's object must not reach the staged value
    const value: DocumentValue = { d: JSON.parse(JSON.stringify(document)), u: yield* writeTime(now) }
    const unit = yield* env.unit
    if (unit === undefined) return yield* env.write((w) => void w.dbs.documents.putSync([collection, id], value), mapError("put"))
    unit.documents.set(overlayKey(collection, id), value)
    unit.ops.push((w) => void w.dbs.documents.putSync([collection, id], value))
  })

  const get = Effect.fn("LmdbDocumentStore.get")(function*(collection: string, id: string) {
    const problem = checkKey(collection, id)
    if (problem !== undefined) return yield* Effect.fail(invalid("InvalidInput", problem))
    const unit = yield* env.unit
    const mine = unit?.documents.get(overlayKey(collection, id))
    if (mine === null) return Option.none<Document>()
    if (mine !== undefined) return Option.some(toDocument(id, mine))
    return yield* env.read(() => {
      const value = dbs.documents.get([collection, id])
      return value === undefined ? Option.none<Document>() : Option.some(toDocument(id, value))
    }, mapError("get"))
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

  /**
   * The matching documents of the collection as this fiber sees them (committed, then the unit's
   * changes), in id order; stops after `enough` when nothing has to be re-sorted.
   */
  const select = (collection: string, condition: Condition, ordering: ReadonlyArray<Ordering>, schema: Schema.Top | undefined, enough = Infinity) =>
    Effect.gen(function*() {
      const problem = checkKey(collection) ?? checkQuery(schema?.ast, condition, ordering, fixedFields)
      if (problem !== undefined) return yield* Effect.fail(invalid("InvalidQuery", problem))
      const staged = stagedIn(yield* env.unit, collection)
      const stopEarly = ordering.length === 0 && staged.size === 0
      const matches = (d: Document) => evaluateIn(condition, lookup(d)) === true
      const found = yield* env.read(() => {
        const out: Array<Document> = []
        // from the collection's first key until another collection: an upper bound key would miss ids
        // that sort after it (astral characters)
        for (const { key, value } of dbs.documents.getRange({ start: [collection] })) {
          if (key[0] !== collection) break
          if (staged.has(key[1])) continue
          const d = toDocument(key[1], value)
          if (!matches(d)) continue
          out.push(d)
          if (stopEarly && out.length >= enough) break
        }
        return out
      }, mapError("find"))
      if (staged.size > 0) {
        for (const [id, value] of staged) {
          if (value === null) continue
          const d = toDocument(id, value)
          if (matches(d)) found.push(d)
        }
        found.sort(byId)
      }
      // Array.prototype.sort is stable: ties stay in id order, as PostgreSQL's tiebreak puts them
      return ordering.length === 0 ? found : found.sort((a, b) => compareIn(ordering, lookup(a), lookup(b)))
    })

  const find = (collection: string, options: FindOptions): Stream.Stream<Document, DocumentStoreError> =>
    Stream.unwrap(Effect.gen(function*() {
      const page = checkPage(options)
      if (page !== undefined) return yield* Effect.fail(invalid("InvalidQuery", page))
      const from = options.offset ?? 0
      const until = options.limit === undefined ? Infinity : from + options.limit
      const all = yield* select(collection, options.condition, orderings(options.ordering), options.schema, until)
      return Stream.fromIterable(all.slice(from, until))
    })).pipe(Stream.withSpan("LmdbDocumentStore.find"))

  const count = Effect.fn("LmdbDocumentStore.count")(function*(collection: string, condition: Condition = TRUE, schema?: Schema.Top) {
    return (yield* select(collection, condition, [], schema)).length
  })

  return DocumentStore.of({ put, get, remove, find, count } satisfies DocumentStoreShape)
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<DocumentStore, never, LmdbEnv> = Layer.effect(DocumentStore, make)
