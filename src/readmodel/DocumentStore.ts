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
 * Fixed fields usable in conditions and orderings: `id` and `updatedAt` (epoch ms); every other path
 * addresses the document. Without an ordering, and to break ties, documents come in id order
 * (code points) on every backend.
 *
 * Documents are JSON whose strings PostgreSQL's `jsonb` can store: no NUL character and no lone
 * surrogate (checked on every backend, so both accept the same data).
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, Option, Schema, Stream } from "effect"
import * as PortError from "../errors/PortError.ts"
import { isJson, isStorableString, unstorableStringAt } from "../internal/Json.ts"
import type { Condition, Ordering } from "../query/Condition.ts"

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
  /** When given, field paths are checked against it (unknown field → InvalidQuery); else only their syntax. */
  readonly schema?: Schema.Top | undefined
}

/**
 * @category errors
 * @since 0.1.0
 */
export const DocumentStoreErrorReason = Schema.Literals(["InvalidInput", "InvalidQuery", "Corrupt", "Unavailable", "Unknown"])

/**
 * `Corrupt`: a stored document does not decode with the typed collection's Schema.
 *
 * @category errors
 * @since 0.1.0
 */
export class DocumentStoreError extends Schema.TaggedError<DocumentStoreError>()("DocumentStoreError", {
  reason: DocumentStoreErrorReason,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  get [PortError.TypeId](): PortError.TypeId {
    return PortError.TypeId
  }
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

/**
 * @category services
 * @since 0.1.0
 */
export interface DocumentStoreShape {
  /** Inserts or replaces, in the ambient storage transaction. `now` (epoch ms) defaults to the Clock. */
  readonly put: (collection: string, id: string, document: unknown, now?: number) => Effect.Effect<void, DocumentStoreError>
  /** Inside a unit of work, sees the unit's own writes. */
  readonly get: (collection: string, id: string) => Effect.Effect<Option.Option<Document>, DocumentStoreError>
  /** True when there was a document to remove. */
  readonly remove: (collection: string, id: string) => Effect.Effect<boolean, DocumentStoreError>
  readonly find: (collection: string, options: FindOptions) => Stream.Stream<Document, DocumentStoreError>
  /** `schema`, when given, checks the condition's paths as in `find`. */
  readonly count: (collection: string, condition?: Condition, schema?: Schema.Top) => Effect.Effect<number, DocumentStoreError>
}

/**
 * @category services
 * @since 0.1.0
 */
export class DocumentStore extends Context.Service<DocumentStore, DocumentStoreShape>()("effect-minos/readmodel/DocumentStore") {}

/** The fixed fields of a document, addressable in conditions and orderings. @since 0.1.0 */
export const fixedFields: ReadonlyArray<string> = ["id", "updatedAt"]

const collectionPattern = /^[A-Za-z][A-Za-z0-9_.-]{0,99}$/

/** Checks a collection name and id; the message says what is wrong. @since 0.1.0 */
export const checkKey = (collection: string, id?: string): string | undefined => {
  if (typeof collection !== "string" || !collectionPattern.test(collection)) return `Invalid collection name ${JSON.stringify(collection)}`
  if (id !== undefined && (typeof id !== "string" || id.length === 0 || id.length > 200 || !isStorableString(id))) {
    return `Invalid document id ${JSON.stringify(id)}: use 1 to 200 characters, no NUL`
  }
  return undefined
}

/** Checks a document. @since 0.1.0 */
export const checkDocument = (document: unknown): string | undefined =>
  unstorableStringAt(document) !== undefined ? "The document holds a NUL character or a lone surrogate" : !isJson(document) ? "The document is not JSON" : undefined

/** Checks `limit` and `offset`. @since 0.1.0 */
export const checkPage = (options: Pick<FindOptions, "limit" | "offset">): string | undefined => {
  for (const [k, v] of [["limit", options.limit], ["offset", options.offset]] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) return `${k} must be a non-negative integer, got ${v}`
  }
  return undefined
}

/** The orderings of `find` as a list. @since 0.1.0 */
export const orderings = (ordering: FindOptions["ordering"]): ReadonlyArray<Ordering> =>
  ordering === undefined ? [] : Array.isArray(ordering) ? ordering : [ordering as Ordering]

/** The write time: the caller's, else the Clock's. @since 0.1.0 */
export const writeTime = (now: number | undefined): Effect.Effect<number> => (now === undefined ? Clock.currentTimeMillis : Effect.succeed(now))

/**
 * A typed view of one collection (see {@link collection}).
 *
 * @category models
 * @since 0.1.0
 */
export interface Collection<A> {
  readonly name: string
  readonly schema: Schema.Codec<A, unknown>
  readonly put: (id: string, value: A) => Effect.Effect<void, DocumentStoreError, DocumentStore>
  /** `Corrupt` when the stored document does not decode. */
  readonly get: (id: string) => Effect.Effect<Option.Option<A>, DocumentStoreError, DocumentStore>
  readonly remove: (id: string) => Effect.Effect<boolean, DocumentStoreError, DocumentStore>
  /** Paths are checked against the Schema. */
  readonly find: (options: Omit<FindOptions, "schema">) => Stream.Stream<A, DocumentStoreError, DocumentStore>
  readonly count: (condition?: Condition) => Effect.Effect<number, DocumentStoreError, DocumentStore>
}

/**
 * A typed view of one collection: values are encoded with `schema` on the way in and decoded on the
 * way out, and query paths are checked against it.
 *
 * @category constructors
 * @since 0.1.0
 */
export const collection = <A>(name: string, schema: Schema.Codec<A, unknown>): Collection<A> => {
  const encode = Schema.encodeEffect(schema)
  const decode = Schema.decodeUnknownEffect(schema)
  const corrupt = (id: string) => (e: Schema.SchemaError) =>
    new DocumentStoreError({ reason: "Corrupt", message: `Corrupt document ${name}/${id}: it does not match its schema: ${e.message}`, cause: e })
  return {
    name,
    schema,
    put: (id, value) =>
      Effect.gen(function*() {
        const store = yield* DocumentStore
        const encoded = yield* encode(value).pipe(
          Effect.mapError((e) => new DocumentStoreError({ reason: "InvalidInput", message: `${name}/${id} does not encode: ${e.message}`, cause: e }))
        )
        yield* store.put(name, id, encoded)
      }),
    get: (id) =>
      Effect.gen(function*() {
        const store = yield* DocumentStore
        const found = yield* store.get(name, id)
        if (Option.isNone(found)) return Option.none<A>()
        return Option.some(yield* decode(found.value.document).pipe(Effect.mapError(corrupt(id))))
      }),
    remove: (id) => Effect.flatMap(DocumentStore, (store) => store.remove(name, id)),
    find: (options) =>
      Stream.unwrap(Effect.map(DocumentStore, (store) =>
        store.find(name, { ...options, schema }).pipe(Stream.mapEffect((d) => decode(d.document).pipe(Effect.mapError(corrupt(d.id)))))
      )),
    count: (condition) => Effect.flatMap(DocumentStore, (store) => store.count(name, condition, schema))
  }
}
