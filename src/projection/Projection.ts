/**
 * Projections: read models fed by the domain events of one aggregate type, with a guarantee rather
 * than a convention: each aggregate's events are applied **exactly once, in version order, with no
 * gap**, whatever topic, partition or path they arrive on, across restarts, outages and replicas.
 *
 * ```ts
 * const ExamViews = Projection.make({
 *   name: "ExamView",
 *   aggregate: Exam,
 *   collection: "exams",
 *   schema: ExamView,
 *   on: {
 *     ExamCreated: (_, event) => Option.some(viewOf(event)),
 *     ExamUpdated: (view, event) => Option.map(view, (v) => patch(v, event)),
 *     ExamDeleted: () => Option.none()
 *   }
 * })
 * const view = yield* ExamViews.get(uuid)
 * ```
 *
 * **How the guarantee holds.** Every projection keeps, per aggregate id, the version of the last
 * event it applied (its mark), in the same storage transaction as the documents it writes
 * (`ProjectionStore`). An event at or below the mark is a duplicate and has no effect; the next
 * version is applied; a later version is parked (stored, in that same transaction) until its
 * predecessor has been applied, and then applied right after it. Nothing is acknowledged before it
 * is applied or durably parked, so nothing is lost; nothing overtakes its predecessor, so order holds.
 *
 * **Modes.**
 * - `inline`: applied inside the command's own unit of work (`Repository.handle`): a command's
 *   caller reads its own write. The service also follows its event log for the projection, which
 *   finds those events already applied and catches what the command path cannot see (events
 *   committed by a minos transaction).
 * - `async` with `source: "local"` (the default): a runner follows the service's own gap-safe global
 *   event log (`EventStore.readAll`), the checkpoint advancing in the same transaction as the writes.
 * - `async` with `source: "stream"`: another service's events from its aggregate stream topic
 *   (`_{Aggregate}Stream`, keyed by aggregate id); `source: "events"`: from minos's per-event-type
 *   topics, which arrive in any order across topics (parking restores it).
 *
 * Each handler maps the aggregate's document (`Option.none()` when there is none) and one event to the
 * next document (`Option.none()` removes it); it may be a plain function or return an Effect. Events
 * without a handler still advance the mark.
 *
 * Documents live in `collection` (generation 1) or `{collection}.g{n}` after a rebuild; the reads here
 * resolve the generation in service, so a rebuild swaps them atomically (see `ProjectionRunner`).
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Option, Result, Schedule, Schema, Stream } from "effect"
import * as Aggregate from "../domain/Aggregate.ts"
import * as PortError from "../errors/PortError.ts"
import type { Condition } from "../query/Condition.ts"
import { TRUE } from "../query/Condition.ts"
import { DocumentStore, DocumentStoreError, type FindOptions } from "../readmodel/DocumentStore.ts"
import { type Parked, ProjectionStore, type ProjectionStoreError } from "../readmodel/ProjectionStore.ts"
import { type StorageError, UnitOfWork } from "../storage/UnitOfWork.ts"
import { streamTopic } from "../broker/Naming.ts"

/**
 * @category errors
 * @since 0.1.0
 */
export class ProjectionError extends Schema.TaggedError<ProjectionError>()("ProjectionError", {
  reason: Schema.Literals(["InvalidEvent", "NotFound", "NotRebuildable", "Unavailable"]),
  projection: Schema.String,
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
 * Where an async projection's events come from.
 *
 * @category models
 * @since 0.1.0
 */
export type Source = "local" | "stream" | "events"

type AnyAggregate = { readonly name: string; readonly events: Schema.Codec<any, unknown> }
type EventOf<Agg extends AnyAggregate> = Schema.Schema.Type<Agg["events"]> & Aggregate.EventLike

/**
 * One handler per event type; each is optional.
 *
 * @category models
 * @since 0.1.0
 */
export type Handlers<Ev extends Aggregate.EventLike, A, E, R> = {
  readonly [T in Ev["_tag"]]?: (
    current: Option.Option<A>,
    event: Aggregate.DomainEvent<Extract<Ev, { readonly _tag: T }>>
  ) => Option.Option<A> | Effect.Effect<Option.Option<A>, E, R>
}

/**
 * @category models
 * @since 0.1.0
 */
export interface Definition<Agg extends AnyAggregate, A, E, R> {
  /** Unique in the service: `[A-Za-z][A-Za-z0-9_.-]*`. */
  readonly name: string
  readonly aggregate: Agg
  /** The collection of the first generation (later ones are `{collection}.g{n}`). */
  readonly collection: string
  readonly schema: Schema.Codec<A, unknown>
  readonly on: Handlers<EventOf<Agg>, A, E, R>
  /** Default `async`. */
  readonly mode?: "inline" | "async" | undefined
  /** For `async`: default `local`. */
  readonly source?: Source | undefined
  /** Event types of the aggregate, for `source: "events"` (default: those `on` handles). */
  readonly eventTypes?: ReadonlyArray<string> | undefined
}

/**
 * What applying one event did.
 *
 * @category models
 * @since 0.1.0
 */
export type Outcome =
  | { readonly _tag: "Applied"; readonly version: number; readonly drained: number }
  | { readonly _tag: "Duplicate"; readonly mark: number }
  | { readonly _tag: "Parked"; readonly mark: number }

/**
 * The persistent state of a projection (key = its name).
 *
 * @category models
 * @since 0.1.0
 */
export interface State {
  /** The generation reads and writes go to. */
  readonly generation: number
  /** Where the local follower of the live generation stands. */
  readonly checkpoint: string
  /** Events the live generation's follower has applied (local source). */
  readonly applied: number
  readonly rebuild?: Rebuild | undefined
  /** Generations swapped out, deleted once `at` (epoch ms) has passed. */
  readonly dropping?: ReadonlyArray<{ readonly generation: number; readonly at: number }> | undefined
  readonly lastRebuild?: { readonly generation: number; readonly applied: number; readonly startedAt: number; readonly finishedAt: number } | undefined
}

/**
 * A rebuild in progress: replaying the log into generation `generation`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Rebuild {
  readonly generation: number
  readonly checkpoint: string
  readonly applied: number
  readonly requestedAt: number
  readonly startedAt: number | null
}

/** The state of a projection that never ran. @since 0.1.0 */
export const initialState: State = { generation: 1, checkpoint: "0", applied: 0 }

/**
 * Services a projection runs on (all in the storage bundle).
 *
 * @category models
 * @since 0.1.0
 */
export type Services = ProjectionStore | DocumentStore | UnitOfWork

/**
 * Any failure of the storage a projection uses.
 *
 * @category errors
 * @since 0.1.0
 */
export type StoreError = ProjectionStoreError | DocumentStoreError | ProjectionError | StorageError

/**
 * @category models
 * @since 0.1.0
 */
export interface Projection<A, Ev extends Aggregate.EventLike = Aggregate.EventLike, E = unknown, R = unknown> {
  readonly name: string
  readonly aggregate: string
  readonly collection: string
  readonly schema: Schema.Codec<A, unknown>
  readonly mode: "inline" | "async"
  readonly source: Source
  /** The broker topics of a remote source (none for `local`). */
  readonly topics: ReadonlyArray<string>
  /** Decodes published domain-event content (upcasting older event versions). */
  readonly decode: (content: unknown) => Effect.Effect<Aggregate.DomainEvent<Ev>, ProjectionError>
  /**
   * Applies one event (its published content) to generation `generation` (default: the live one),
   * in the ambient storage transaction (one of its own when none is open).
   */
  readonly handle: (content: unknown, options?: { readonly generation?: number | undefined }) => Effect.Effect<Outcome, E | StoreError, R | Services>
  /** The live generation's collection name, as of now. */
  readonly activeCollection: Effect.Effect<string, StoreError, ProjectionStore>
  readonly get: (id: string) => Effect.Effect<Option.Option<A>, StoreError, Services>
  readonly find: (options: Omit<FindOptions, "schema">) => Stream.Stream<A, StoreError, Services>
  readonly count: (condition?: Condition) => Effect.Effect<number, StoreError, Services>
  /** The version of `id` the live generation has applied (0: none). */
  readonly version: (id: string) => Effect.Effect<number, StoreError, ProjectionStore>
  /** Waits until the live generation applied `id` at `version` or later, at most `timeoutMs`; false on timeout. */
  readonly waitFor: (id: string, version: number, timeoutMs: number) => Effect.Effect<boolean, StoreError, ProjectionStore>
}

/**
 * @since 0.1.0
 */
export declare namespace Projection {
  export type Any = Projection<any, any, any, any>
}

const namePattern = /^[A-Za-z][A-Za-z0-9_.-]{0,60}$/

/** The collection of generation `n`. @since 0.1.0 */
export const collectionOf = (collection: string, generation: number): string => (generation === 1 ? collection : `${collection}.g${generation}`)

/** The ProjectionStore key of generation `n`'s marks and parked events. @since 0.1.0 */
export const marksOf = (name: string, generation: number): string => `${name}#${generation}`

const Header = Schema.Struct({ uuid: Schema.String, version: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)), type: Schema.String })
const decodeHeader = Schema.decodeUnknownResult(Header)

/** The state of projection `name` (its initial state when it never ran). @since 0.1.0 */
export const stateOf = (name: string) =>
  Effect.flatMap(ProjectionStore, (store) => store.getState(name)).pipe(
    Effect.map((found) => Option.match(found, { onNone: () => ({ state: initialState, revision: 0 }), onSome: (r) => ({ state: r.value as State, revision: r.revision }) }))
  )

/**
 * Defines a projection.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <Agg extends AnyAggregate, A, E = never, R = never>(
  definition: Definition<Agg, A, E, R>
): Projection<A, EventOf<Agg>, E, R> => {
  type Ev = EventOf<Agg>
  const { name, collection, schema } = definition
  if (!namePattern.test(name)) throw new Error(`Projection name ${JSON.stringify(name)} must be letters, digits, _ . - (at most 61)`)
  if (!/^[A-Za-z][A-Za-z0-9_.-]{0,89}$/.test(collection)) throw new Error(`Projection ${name}: invalid collection name ${JSON.stringify(collection)}`)
  const mode = definition.mode ?? "async"
  const source: Source = mode === "inline" ? "local" : definition.source ?? "local"
  const aggregateName = definition.aggregate.name
  const handlers = definition.on as Record<string, ((current: Option.Option<A>, event: Aggregate.DomainEvent<Ev>) => unknown) | undefined>
  const topics = source === "stream"
    ? [streamTopic(aggregateName)]
    : source === "events"
    ? [...new Set(definition.eventTypes ?? Object.keys(handlers))]
    : []
  const eventSchema = Aggregate.DomainEvent(definition.aggregate) as Schema.Codec<Aggregate.DomainEvent<Ev>, unknown>
  const decodeEvent = Schema.decodeUnknownEffect(eventSchema)
  const encodeDoc = Schema.encodeEffect(schema)
  const decodeDoc = Schema.decodeUnknownEffect(schema)

  const invalid = (message: string, cause?: unknown) => new ProjectionError({ reason: "InvalidEvent", projection: name, message, cause })

  const decode = (content: unknown) =>
    decodeEvent(content, { errors: "all" }).pipe(
      Effect.mapError((e) => invalid(`Projection ${name}: the event does not match ${aggregateName}'s domain events: ${e.message}`, e))
    )

  const activeGeneration = Effect.map(stateOf(name), ({ state }) => state.generation)
  const activeCollection = Effect.map(activeGeneration, (g) => collectionOf(collection, g))

  const corrupt = (id: string) => (e: Schema.SchemaError) =>
    new DocumentStoreError({ reason: "Corrupt", message: `Projection ${name}: document ${id} does not match its schema: ${e.message}`, cause: e })

  const getIn = (col: string, id: string) =>
    Effect.gen(function*() {
      const store = yield* DocumentStore
      const found = yield* store.get(col, id)
      if (Option.isNone(found)) return Option.none<A>()
      return Option.some(yield* decodeDoc(found.value.document).pipe(Effect.mapError(corrupt(id))))
    })

  /** Runs the handler of one event against the aggregate's document in `col`. */
  const applyOne = (col: string, event: Aggregate.DomainEvent<Ev>) =>
    Effect.gen(function*() {
      const handler = handlers[event.data._tag]
      if (handler === undefined) return
      const current = yield* getIn(col, event.uuid)
      const result = handler(current, event)
      const next = (Effect.isEffect(result) ? yield* (result as Effect.Effect<Option.Option<A>, E, R>) : result) as Option.Option<A>
      const store = yield* DocumentStore
      if (Option.isSome(next)) {
        const encoded = yield* encodeDoc(next.value).pipe(
          Effect.mapError((e) => new DocumentStoreError({ reason: "InvalidInput", message: `Projection ${name}: the document for ${event.uuid} does not encode: ${e.message}`, cause: e }))
        )
        yield* store.put(col, event.uuid, encoded, event.createdAt)
      } else if (Option.isSome(current)) {
        yield* store.remove(col, event.uuid)
      }
    })

  const handle = (content: unknown, options?: { readonly generation?: number | undefined }) =>
    Effect.gen(function*() {
      const header = decodeHeader(content)
      if (Result.isFailure(header)) return yield* Effect.fail(invalid(`Projection ${name}: not a domain event (no uuid, version and type): ${header.failure.message}`))
      const { uuid, version } = header.success
      const store = yield* ProjectionStore
      const uow = yield* UnitOfWork
      return yield* uow.transaction(Effect.gen(function*() {
        const generation = options?.generation ?? (yield* activeGeneration)
        const marks = marksOf(name, generation)
        const col = collectionOf(collection, generation)
        const mark = yield* store.lock(marks, uuid)
        if (version <= mark) return { _tag: "Duplicate", mark } as Outcome
        if (version > mark + 1) {
          yield* store.park({ projection: marks, aggregateId: uuid, version, event: content, parkedAt: yield* Clock.currentTimeMillis })
          return { _tag: "Parked", mark } as Outcome
        }
        yield* applyOne(col, yield* decode(content))
        let at = version
        let drained = 0
        for (;;) {
          const next: Option.Option<Parked> = yield* store.unpark(marks, uuid, at + 1)
          if (Option.isNone(next)) break
          yield* applyOne(col, yield* decode(next.value.event))
          at++
          drained++
        }
        yield* store.setMark(marks, uuid, at)
        return { _tag: "Applied", version: at, drained } as Outcome
      }))
    }).pipe(Effect.withSpan("Projection.handle", { attributes: { projection: name } }))

  const version = (id: string) =>
    Effect.gen(function*() {
      const generation = yield* activeGeneration
      return yield* Effect.flatMap(ProjectionStore, (store) => store.mark(marksOf(name, generation), id))
    })

  return {
    name,
    aggregate: aggregateName,
    collection,
    schema,
    mode,
    source,
    topics,
    decode,
    handle,
    activeCollection,
    get: (id) => Effect.flatMap(activeCollection, (col) => getIn(col, id)),
    find: (options) =>
      Stream.unwrap(Effect.gen(function*() {
        const col = yield* activeCollection
        const store = yield* DocumentStore
        return store.find(col, { ...options, schema }).pipe(Stream.mapEffect((d) => decodeDoc(d.document).pipe(Effect.mapError(corrupt(d.id)))))
      })),
    count: (condition = TRUE) =>
      Effect.gen(function*() {
        const col = yield* activeCollection
        return yield* Effect.flatMap(DocumentStore, (store) => store.count(col, condition, schema))
      }),
    version,
    waitFor: (id, at, timeoutMs) =>
      version(id).pipe(
        Effect.map((v) => v >= at),
        Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (caughtUp) => caughtUp }),
        Effect.timeoutOrElse({ duration: Duration.millis(timeoutMs), orElse: () => Effect.succeed(false) })
      )
  }
}
