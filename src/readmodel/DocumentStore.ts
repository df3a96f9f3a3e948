/**
 * The query side's store: named collections of JSON documents keyed by id, written by event
 * handlers in the same storage transaction as the inbox claim (so a redelivered event has no second
 * effect) and queried with the snapshots' `Condition` language. On PostgreSQL it is one table; on the
 * embedded LMDB default a named database. Users on PostgreSQL may of course write their own tables
 * with `SqlClient` instead.
 *
 * ```ts
 * const views = DocumentStore.collection("exams", ExamView)
 * yield* views.put(uuid, view)
 * const math = yield* views.find({ condition: Condition.equal("subject", "math") }).pipe(Stream.runCollect)
 * ```
 *
 * Fixed fields usable in conditions and orderings: `id` and `updatedAt` (epoch ms).
 *
 * @since 0.1.0
 */
import { Context, Effect, Option, Schema, Stream } from "effect"
import type { Condition, Ordering } from "../snapshot/Condition.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface Document {
  readonly id: string
  readonly document: unknown
  /** Epoch ms of the last write. */
  readonly updatedAt: number
}

/**
 * @category models
 * @since 0.1.0
 */
export interface FindOptions {
  readonly condition: Condition
  readonly ordering?: Ordering | ReadonlyArray<Ordering> | undefined
  readonly limit?: number | undefined
  readonly offset?: number | undefined
  /** When given, field paths are checked against it (unknown field → InvalidQuery). */
  readonly schema?: Schema.Top | undefined
}

/**
 * @category errors
 * @since 0.1.0
 */
export class DocumentStoreError extends Schema.TaggedError<DocumentStoreError>()("DocumentStoreError", {
  reason: Schema.Literals(["InvalidInput", "InvalidQuery", "Corrupt", "Unavailable", "Unknown"]),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

/**
 * @category services
 * @since 0.1.0
 */
export interface DocumentStoreShape {
  /** Inserts or replaces, in the ambient storage transaction. */
  readonly put: (collection: string, id: string, document: unknown, now: number) => Effect.Effect<void, DocumentStoreError>
  readonly get: (collection: string, id: string) => Effect.Effect<Option.Option<Document>, DocumentStoreError>
  /** True when there was a document to remove. */
  readonly remove: (collection: string, id: string) => Effect.Effect<boolean, DocumentStoreError>
  readonly find: (collection: string, options: FindOptions) => Stream.Stream<Document, DocumentStoreError>
  readonly count: (collection: string, condition?: Condition) => Effect.Effect<number, DocumentStoreError>
}

/**
 * @category services
 * @since 0.1.0
 */
export class DocumentStore extends Context.Service<DocumentStore, DocumentStoreShape>()("effect-minos/readmodel/DocumentStore") {}

/** The fixed fields of a document. @since 0.1.0 */
export const fixedFields: ReadonlyArray<string> = ["id", "updatedAt"]

const collectionPattern = /^[A-Za-z][A-Za-z0-9_.-]{0,99}$/

/** Checks a collection name and id; the message says what is wrong. @since 0.1.0 */
export const checkKey = (collection: string, id?: string): string | undefined => {
  if (typeof collection !== "string" || !collectionPattern.test(collection)) return `Invalid collection name ${JSON.stringify(collection)}`
  if (id !== undefined && (typeof id !== "string" || id.length === 0 || id.length > 200)) return `Invalid document id ${JSON.stringify(id)}`
  return undefined
}

/**
 * A typed view of one collection: values are encoded with `schema` on the way in and decoded on the
 * way out.
 *
 * @category constructors
 * @since 0.1.0
 */
export const collection = <A>(name: string, schema: Schema.Codec<A, unknown>) => {
  const encode = Schema.encodeEffect(schema)
  const decode = Schema.decodeUnknownEffect(schema)
  const corrupt = (id: string) => (e: Schema.SchemaError) =>
    new DocumentStoreError({ reason: "Corrupt", message: `${name}/${id} does not match its schema: ${e.message}` })
  return {
    name,
    schema,
    put: (id: string, value: A) =>
      Effect.gen(function*() {
        const store = yield* DocumentStore
        const encoded = yield* encode(value).pipe(Effect.mapError((e) => new DocumentStoreError({ reason: "InvalidInput", message: e.message })))
        yield* store.put(name, id, encoded, Date.now())
      }),
    get: (id: string) =>
      Effect.gen(function*() {
        const store = yield* DocumentStore
        const found = yield* store.get(name, id)
        if (Option.isNone(found)) return Option.none<A>()
        return Option.some(yield* decode(found.value.document).pipe(Effect.mapError(corrupt(id))))
      }),
    remove: (id: string) => Effect.flatMap(DocumentStore, (store) => store.remove(name, id)),
    find: (options: Omit<FindOptions, "schema">): Stream.Stream<A, DocumentStoreError, DocumentStore> =>
      Stream.unwrap(Effect.map(DocumentStore, (store) =>
        store.find(name, { ...options, schema }).pipe(Stream.mapEffect((d) => decode(d.document).pipe(Effect.mapError(corrupt(d.id)))))
      )),
    count: (condition?: Condition) => Effect.flatMap(DocumentStore, (store) => store.count(name, condition))
  }
}
