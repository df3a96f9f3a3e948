/**
 * Command handling for one aggregate type: load (snapshot, then the events after it), decide, and
 * in ONE storage transaction append the events at the expected version, store the new snapshot and
 * stage the domain events in the outbox. A concurrent writer makes the append fail with `Conflict`;
 * the whole command is then retried on fresh state (bounded, configurable). A caller that passes its
 * own `expectedVersion` gets the `Conflict` instead (stale read → HTTP 409).
 *
 * ```ts
 * class Exams extends Context.Service<Exams, Repository.Repository<typeof Exam>>()("exam/Exams") {
 *   static readonly layer = Repository.layer(Exams, Exam)
 * }
 * const { id, version } = yield* (yield* Exams).create(Entity.create({ title: "Algebra", ... }))
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Option, Result, Schedule, Schema, Stream } from "effect"
import * as Message from "../broker/Message.ts"
import { streamTopic } from "../broker/Naming.ts"
import { stableUuid, traceparent } from "../internal/Ids.ts"
import * as Aggregate from "../domain/Aggregate.ts"
import { AlreadyDeleted, AlreadyExists, NotFound } from "../domain/DomainError.ts"
import { Outbox, type OutboxError } from "../queue/Outbox.ts"
import type { FindOptions } from "../snapshot/SnapshotStore.ts"
import { SnapshotStore, type SnapshotStoreError } from "../snapshot/SnapshotStore.ts"
import { type StorageError, UnitOfWork } from "../storage/UnitOfWork.ts"
import { EventStore, EventStoreError, type StoredEvent } from "../eventstore/EventStore.ts"
import { isUuid } from "../internal/Ids.ts"
import { CurrentTransaction } from "../transaction/Transactions.ts"

/**
 * An aggregate as loaded.
 *
 * @category models
 * @since 0.1.0
 */
export interface Loaded<State> {
  readonly id: string
  /** 0 when the aggregate has no events. */
  readonly version: number
  readonly state: State
  readonly exists: boolean
  readonly deleted: boolean
  /** Epoch ms of the first event (undefined when none). */
  readonly createdAt: number | undefined
  /** Epoch ms of the last event. */
  readonly updatedAt: number | undefined
}

/**
 * The outcome of a command: the new state and the events it produced (none when nothing changed).
 *
 * @category models
 * @since 0.1.0
 */
export interface Handled<State, Event> extends Loaded<State> {
  readonly events: ReadonlyArray<Event>
}

/**
 * @category models
 * @since 0.1.0
 */
export interface HandleOptions {
  /** The version the caller's decision was based on; another current version fails with `Conflict` (no retry). */
  readonly expectedVersion?: number | undefined
  /** Write inside this minos transaction (sagas). */
  readonly transaction?: string | undefined
  /** Stored with every event (correlation id, user, …). */
  readonly metadata?: Readonly<Record<string, unknown>> | undefined
  /** Added to the headers of the published domain events. */
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * Any storage failure a repository can surface.
 *
 * @category errors
 * @since 0.1.0
 */
export type RepositoryError = EventStoreError | SnapshotStoreError | OutboxError | StorageError

/**
 * @category models
 * @since 0.1.0
 */
export interface Repository<A extends Aggregate.Aggregate.Any> {
  readonly aggregate: A
  /** The current state; an aggregate without events loads as its initial state (version 0). */
  readonly load: (id: string, options?: { readonly transaction?: string | undefined }) => Effect.Effect<Loaded<Aggregate.Aggregate.State<A>>, RepositoryError>
  /** Like `load`, but fails with `NotFound` / `AlreadyDeleted` unless the aggregate exists. */
  readonly get: (
    id: string,
    options?: { readonly transaction?: string | undefined }
  ) => Effect.Effect<Loaded<Aggregate.Aggregate.State<A>>, RepositoryError | NotFound | AlreadyDeleted>
  /** Runs a command against the aggregate `id`. */
  readonly handle: (
    id: string,
    command: Aggregate.Aggregate.Command<A>,
    options?: HandleOptions
  ) => Effect.Effect<Handled<Aggregate.Aggregate.State<A>, Aggregate.Aggregate.Event<A>>, Aggregate.Aggregate.Error<A> | RepositoryError>
  /** Runs a command against a new aggregate with a fresh id. */
  readonly create: (
    command: Aggregate.Aggregate.Command<A>,
    options?: Omit<HandleOptions, "expectedVersion">
  ) => Effect.Effect<Handled<Aggregate.Aggregate.State<A>, Aggregate.Aggregate.Event<A>>, Aggregate.Aggregate.Error<A> | RepositoryError>
  /** Queries the snapshots; deleted aggregates are hidden unless asked. */
  readonly find: (options: FindOptions) => Stream.Stream<Loaded<Aggregate.Aggregate.State<A>>, RepositoryError>
}

/**
 * @category models
 * @since 0.1.0
 */
export interface RepositoryOptions {
  /** Attempts of a command that keeps losing version races (default 20). */
  readonly maxAttempts?: number
  /** First backoff between attempts, jittered and doubled (default 2 ms, capped at 200 ms). */
  readonly backoffMs?: number
  /** Publish domain events through the outbox (default true). */
  readonly publish?: boolean
  /**
   * Also publish every event on the aggregate's stream topic (`_{Aggregate}Stream`, key = aggregate
   * id), which projections of other services consume in order (`source: "stream"`; default false, as
   * it adds one outbox record per event).
   */
  readonly stream?: boolean
}

const withId = (id: string) => (error: unknown): unknown => {
  if (error instanceof NotFound && error.id === "") return new NotFound({ aggregate: error.aggregate, id })
  if (error instanceof AlreadyDeleted && error.id === "") return new AlreadyDeleted({ aggregate: error.aggregate, id })
  if (error instanceof AlreadyExists && error.id === "") return new AlreadyExists({ aggregate: error.aggregate, id })
  return error
}

const entityAction = (aggregate: string, type: string): "create" | "update" | "delete" | undefined =>
  type === `${aggregate}Created` ? "create" : type === `${aggregate}Updated` ? "update" : type === `${aggregate}Deleted` ? "delete" : undefined

/**
 * The content of a published domain event (see `Aggregate.DomainEvent`); `data` is the encoded event
 * with its `_tag`.
 *
 * @category models
 * @since 0.1.0
 */
export const domainEventContent = (aggregate: string, id: string, version: number, type: string, createdAt: number, data: unknown): Record<string, unknown> => {
  const action = entityAction(aggregate, type)
  return { uuid: id, aggregate, version, type, ...(action ? { action } : {}), createdAt, data }
}

/**
 * The content of a stored event as its domain event (`data` gets its `_tag` back).
 *
 * @category models
 * @since 0.1.0
 */
export const storedEventContent = (e: StoredEvent): Record<string, unknown> =>
  domainEventContent(e.aggregate, e.aggregateId, e.version, e.type, e.createdAt, { ...(e.data as object), _tag: e.type })

/**
 * Read models that run inside the command's storage transaction (inline projections), when the
 * service provides them: the repository hands them the domain events of every command it commits
 * outside a minos transaction (events of a minos transaction reach the read models from the event log
 * once committed).
 *
 * @category services
 * @since 0.1.0
 */
export class InlineProjections extends Context.Service<InlineProjections, {
  /** A `Conflict` retries the command, like a lost version race. */
  readonly apply: (aggregate: string, events: ReadonlyArray<Record<string, unknown>>) => Effect.Effect<void, EventStoreError | StorageError>
}>()("effect-minos/command/InlineProjections") {}

/** Marks a conflict the caller asked for (its own expected version), which is not retried. */
class CallerConflict {
  readonly error: EventStoreError
  constructor(error: EventStoreError) {
    this.error = error
  }
}

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = <A extends Aggregate.Aggregate.Any>(aggregate: A, options: RepositoryOptions = {}) =>
  Effect.gen(function*() {
    type State = Aggregate.Aggregate.State<A>
    type Event = Aggregate.Aggregate.Event<A>
    const events = yield* EventStore
    const snapshots = yield* SnapshotStore
    const outbox = yield* Outbox
    const uow = yield* UnitOfWork
    const encodeEvent = Schema.encodeSync(aggregate.events as Schema.Codec<Event, unknown>)
    const decodeEvent = Schema.decodeUnknownSync(aggregate.events as Schema.Codec<Event, unknown>)
    const name = aggregate.name
    const publish = options.publish ?? true
    const stream = options.stream ?? false
    const inline = yield* Effect.serviceOption(InlineProjections)

    const corrupt = (id: string, message: string, cause: unknown) =>
      new EventStoreError({ reason: "Corrupt", message: `${name} ${id}: ${message}`, aggregateId: id, cause })

    const fold = (id: string, stored: ReadonlyArray<StoredEvent>, from: State) =>
      Effect.try({
        try: () => Aggregate.replay(aggregate, stored.map((e) => decodeEvent({ ...(e.data as object), _tag: e.type })), from),
        catch: (cause) => corrupt(id, "a stored event does not match the aggregate's event schema", cause)
      })

    const load = Effect.fn("Repository.load")(function*(id: string, loadOptions?: { readonly transaction?: string | undefined }) {
      if (!isUuid(id)) return yield* Effect.fail(new EventStoreError({ reason: "InvalidInput", message: `${name} id ${JSON.stringify(id)} is not a UUID` }))
      const transaction = loadOptions?.transaction ?? (yield* CurrentTransaction)
      const snapshot = yield* snapshots.getOption(name, id, { transaction })
      let state = aggregate.initialState as State
      let version = 0
      let createdAt: number | undefined
      let updatedAt: number | undefined
      if (Option.isSome(snapshot)) {
        const s = snapshot.value
        state = yield* Effect.try({
          try: () => aggregate.snapshot.decode(s.document, s.deleted) as State,
          catch: (cause) => corrupt(id, "the snapshot does not match the aggregate's state schema", cause)
        })
        version = s.version
        createdAt = s.createdAt
        updatedAt = s.updatedAt
      }
      const after = yield* events.readStream(id, { afterVersion: version, transaction })
      if (after.length > 0) {
        state = yield* fold(id, after, state)
        version = after[after.length - 1]!.version
        createdAt = createdAt ?? after[0]!.createdAt
        updatedAt = after[after.length - 1]!.createdAt
      }
      const exists = aggregate.exists(state)
      const deleted = exists && aggregate.snapshot.encode(state).deleted
      return { id, version, state, exists, deleted, createdAt, updatedAt } satisfies Loaded<State>
    })

    const get = Effect.fn("Repository.get")(function*(id: string, getOptions?: { readonly transaction?: string | undefined }) {
      const loaded = yield* load(id, getOptions)
      if (!loaded.exists) return yield* Effect.fail(new NotFound({ aggregate: name, id }))
      if (loaded.deleted) return yield* Effect.fail(new AlreadyDeleted({ aggregate: name, id }))
      return loaded
    })

    const attempt = (id: string, command: Aggregate.Aggregate.Command<A>, handleOptions: HandleOptions) =>
      uow.transaction(Effect.gen(function*() {
        const transaction = handleOptions.transaction ?? (yield* CurrentTransaction)
        const loaded = yield* load(id, { transaction })
        if (handleOptions.expectedVersion !== undefined && handleOptions.expectedVersion !== loaded.version) {
          return yield* Effect.fail(new CallerConflict(new EventStoreError({
            reason: "Conflict",
            message: `${name} ${id} is at version ${loaded.version}, not ${handleOptions.expectedVersion}`,
            aggregateId: id
          })))
        }
        const decided = aggregate.decide(command, loaded.state)
        if (Result.isFailure(decided)) return yield* Effect.fail(withId(id)(decided.failure) as Aggregate.Aggregate.Error<A>)
        const produced = decided.success as ReadonlyArray<Event>
        if (produced.length === 0) return { ...loaded, events: [] as ReadonlyArray<Event> }
        const now = yield* Clock.currentTimeMillis
        const encoded = produced.map((e) => {
          const { _tag, ...data } = encodeEvent(e) as { _tag: string }
          return { _tag, data }
        })
        yield* events.append({
          aggregate: name,
          aggregateId: id,
          expectedVersion: loaded.version,
          now,
          transaction,
          events: encoded.map((e) => ({ type: e._tag, data: e.data, ...(handleOptions.metadata === undefined ? {} : { metadata: handleOptions.metadata }) }))
        })
        const state = Aggregate.replay(aggregate, produced, loaded.state) as State
        const version = loaded.version + produced.length
        const createdAt = loaded.createdAt ?? now
        const { deleted, document } = aggregate.snapshot.encode(state)
        yield* snapshots.put({ aggregate: name, aggregateId: id, version, document, deleted, createdAt, updatedAt: now, transactionId: transaction ?? null })
        if (Option.isSome(inline) && transaction === undefined) {
          yield* inline.value.apply(name, encoded.map((e, i) => domainEventContent(name, id, loaded.version + i + 1, e._tag, now, { ...e.data, _tag: e._tag })))
        }
        if (publish) {
          const trace = yield* traceparent
          const records = produced.flatMap((event, i) => {
            const eventVersion = loaded.version + i + 1
            const publications: ReadonlyArray<Aggregate.Publication> = aggregate.publications(event)
            // the aggregate's stream topic carries every event of an aggregate, keyed by its id, in order
            const all = stream ? [...publications, { topic: streamTopic(name), content: { ...encoded[i]!.data, _tag: encoded[i]!._tag } }] : publications
            return all.map((p: Aggregate.Publication) => {
              const identifier = stableUuid(`${name}:${id}:${eventVersion}:${p.topic}`)
              const content = domainEventContent(name, id, eventVersion, event._tag, now, p.content)
              const headers = { ...handleOptions.headers }
              return {
                topic: p.topic,
                key: id,
                value: Message.encode(Message.make({ topic: p.topic, identifier, content, headers, strategy: "multicast" })),
                headers: { "message-id": identifier, ...(Option.isSome(trace) ? { traceparent: trace.value } : {}) }
              }
            })
          })
          yield* outbox.stage(records, { transaction })
        }
        return { id, version, state, exists: aggregate.exists(state), deleted, createdAt, updatedAt: now, events: produced }
      }))

    const maxAttempts = options.maxAttempts ?? 20
    const schedule = Schedule.exponential(`${options.backoffMs ?? 2} millis`).pipe(
      Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.millis(200)))),
      Schedule.jittered
    )

    const handle = Effect.fn("Repository.handle")(function*(id: string, command: Aggregate.Aggregate.Command<A>, handleOptions: HandleOptions = {}) {
      if (!isUuid(id)) return yield* Effect.fail(new EventStoreError({ reason: "InvalidInput", message: `${name} id ${JSON.stringify(id)} is not a UUID` }))
      return yield* attempt(id, command, handleOptions).pipe(
        Effect.retry({
          times: maxAttempts - 1,
          schedule,
          while: (e) => e instanceof EventStoreError && e.reason === "Conflict"
        }),
        Effect.catch((e) => Effect.fail(e instanceof CallerConflict ? e.error : e))
      ) as Effect.Effect<Handled<State, Event>, Aggregate.Aggregate.Error<A> | RepositoryError>
    })

    const create = (command: Aggregate.Aggregate.Command<A>, createOptions: Omit<HandleOptions, "expectedVersion"> = {}) =>
      handle(crypto.randomUUID(), command, { ...createOptions, expectedVersion: 0 })

    const find = (findOptions: FindOptions): Stream.Stream<Loaded<State>, RepositoryError> =>
      Stream.unwrap(Effect.map(CurrentTransaction, (tx) => snapshots.find(aggregate, { ...findOptions, transaction: findOptions.transaction ?? tx }))).pipe(
        Stream.mapEffect((s) =>
          Effect.try({
            try: (): Loaded<State> => {
              const state = aggregate.snapshot.decode(s.document, s.deleted) as State
              return { id: s.aggregateId, version: s.version, state, exists: true, deleted: s.deleted, createdAt: s.createdAt, updatedAt: s.updatedAt }
            },
            catch: (cause) => corrupt(s.aggregateId, "the snapshot does not match the aggregate's state schema", cause)
          })
        )
      )

    return { aggregate, load, get, handle, create, find } satisfies Repository<A>
  })

/**
 * A layer for a repository service of your own.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <I, A extends Aggregate.Aggregate.Any>(
  tag: Context.Key<I, Repository<A>>,
  aggregate: A,
  options?: RepositoryOptions
): Layer.Layer<I, never, EventStore | SnapshotStore | Outbox | UnitOfWork> => Layer.effect(tag, make(aggregate, options))
