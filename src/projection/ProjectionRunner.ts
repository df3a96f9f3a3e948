/**
 * Running projections in a service: the follower of the local event log, rebuilds, status, and the
 * wiring of inline and remote projections.
 *
 * - **Follower** (`source: "local"`, and behind every inline projection): reads the gap-safe global
 *   log (`EventStore.readAll`) from the projection's checkpoint and applies the aggregate's events;
 *   the checkpoint advances in the same storage transaction as the documents, by compare-and-set, so
 *   two followers (two replicas) never both advance it: one of them retries on fresh state. It runs
 *   on the replica holding the lease `projection:{name}` (`Leadership`) to save the duplicate work;
 *   correctness does not depend on it.
 * - **Rebuild** (`requestRebuild`, `effect-minos projections rebuild <name>`): the follower replays
 *   the whole log into a new generation (`{collection}.g{n}`, marks of its own) while the live one
 *   keeps serving and following; when the replay reaches the head, one transaction makes it the live
 *   generation (reads switch atomically). The old generation is deleted `dropAfterMs` later, so a
 *   read that resolved it just before the swap still finds its documents.
 * - **Poison**: an event whose handler keeps failing is parked with its error after the retries; the
 *   follower moves on, the aggregate's later events park behind it (its mark does not move) and
 *   other aggregates flow; `retryParked` applies it again (and, on success, what waited behind it).
 * - **Remote** (`stream`, `events`): the projection's topics get event handlers (`handlers`); the
 *   consumer's inbox claim and the projection's writes share one storage transaction.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Context, Duration, Effect, Layer, Option, Ref, Schedule, Schema, Stream } from "effect"
import { describeCause } from "../internal/Outcome.ts"
import { Leadership } from "../cluster/Leadership.ts"
import { InlineProjections, storedEventContent } from "../command/Repository.ts"
import * as PortError from "../errors/PortError.ts"
import { EventStore, EventStoreError, type StoredEvent } from "../eventstore/EventStore.ts"
import { cappedExponential } from "../internal/Schedules.ts"
import { TRUE } from "../query/Condition.ts"
import { DocumentStore } from "../readmodel/DocumentStore.ts"
import { ProjectionStore } from "../readmodel/ProjectionStore.ts"
import * as Router from "../router/Router.ts"
import { StorageError, UnitOfWork } from "../storage/UnitOfWork.ts"
import { collectionOf, marksOf, type Projection, ProjectionError, type Rebuild, type State, stateOf } from "./Projection.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface RunnerOptions {
  /** Events read per transaction (default 500). */
  readonly batchSize?: number | undefined
  /** Longest wait before looking at the log again when it had nothing new (default 200 ms). */
  readonly pollIntervalMs?: number | undefined
  /** How long a swapped-out generation keeps its documents (default 30 s). */
  readonly dropAfterMs?: number | undefined
  /** Attempts of a failing event before it is parked as poison (default 5). */
  readonly attempts?: number | undefined
  /**
   * Runs the follower of `name` where the cluster wants it; default: `Leadership.run` when the
   * storage bundle provides `Leadership`, else here.
   */
  readonly leadership?: (<R>(name: string, effect: Effect.Effect<void, never, R>) => Effect.Effect<unknown, never, R>) | undefined
}

/** The state key listing the projections of the service (for the CLI). */
export const registryKey = "minos.projections"

/**
 * What `status` reports.
 *
 * @category models
 * @since 0.1.0
 */
export interface Status {
  readonly name: string
  readonly aggregate: string
  readonly mode: string
  readonly source: string
  readonly collection: string
  readonly state: State
  /** Events of the aggregate after the checkpoint (counted up to 1000; local source only). */
  readonly lag: number | undefined
  readonly lagCapped: boolean
  /** Events parked in the live generation (early, or poison with an error). */
  readonly parked: number
  readonly documents: number
}

type Deps = EventStore | ProjectionStore | DocumentStore | UnitOfWork

const isRetryable = (e: unknown) => PortError.isRetryable(e)

const putState = (name: string, state: State, revision: number) => Effect.flatMap(ProjectionStore, (s) => s.putState(name, state, revision))

/** Applies a batch of stored events to `generation` in the ambient transaction; returns how many were the projection's. */
const applyBatch = (projection: Projection.Any, events: ReadonlyArray<StoredEvent>, generation: number) =>
  Effect.gen(function*() {
    let n = 0
    for (const e of events) {
      if (e.aggregate !== projection.aggregate) continue
      yield* projection.handle(storedEventContent(e), { generation })
      n++
    }
    return n
  })

/**
 * Parks one event of the log as poison (its error kept), so the follower can move past it.
 */
const parkPoison = (projection: Projection.Any, event: StoredEvent, generation: number, error: string) =>
  Effect.gen(function*() {
    const store = yield* ProjectionStore
    const uow = yield* UnitOfWork
    const now = yield* Clock.currentTimeMillis
    yield* uow.transaction(Effect.gen(function*() {
      const marks = marksOf(projection.name, generation)
      const mark = yield* store.lock(marks, event.aggregateId)
      if (event.version <= mark) return
      yield* store.park({ projection: marks, aggregateId: event.aggregateId, version: event.version, event: { ...storedEventContent(event), error }, parkedAt: now })
    }))
    yield* Effect.logError(`projection ${projection.name}: ${projection.aggregate} ${event.aggregateId} v${event.version} keeps failing; parked (later events of it wait): ${error}`)
  })

/**
 * One step of the follower for `generation` from `checkpoint`: reads a batch and applies it with
 * the checkpoint update `commit` in one transaction. A batch that keeps failing is applied event by
 * event, and an event that keeps failing is parked as poison.
 */
const follow = (
  projection: Projection.Any,
  options: { readonly checkpoint: string; readonly generation: number; readonly batchSize: number; readonly attempts: number },
  commit: (checkpoint: string, applied: number, caughtUp: boolean) => Effect.Effect<void, unknown, Deps>
) =>
  Effect.gen(function*() {
    const events = yield* EventStore
    const uow = yield* UnitOfWork
    const batch = yield* events.readAll(options.checkpoint, options.batchSize)
    const caughtUp = batch.events.length < options.batchSize
    if (batch.events.length === 0) {
      yield* commit(batch.checkpoint, 0, true)
      return 0
    }
    const whole = uow.transaction(Effect.gen(function*() {
      const n = yield* applyBatch(projection, batch.events, options.generation)
      yield* commit(batch.checkpoint, n, caughtUp)
      return n
    }))
    const outcome = yield* Effect.exit(whole)
    if (outcome._tag === "Success") return batch.events.length
    const error = outcome.cause
    // a conflict or an outage: the caller retries the step on fresh state
    if (!isPoison(error)) return yield* Effect.failCause(error)
    // a failing event: find it, one at a time
    let checkpoint = options.checkpoint
    let read = 0
    for (;;) {
      const one = yield* events.readAll(checkpoint, 1)
      const event = one.events[0]
      if (event === undefined) return read
      const single = uow.transaction(Effect.gen(function*() {
        const n = yield* applyBatch(projection, one.events, options.generation)
        yield* commit(one.checkpoint, n, false)
      }))
      const done = yield* single.pipe(
        Effect.retry({ schedule: Schedule.exponential("50 millis"), times: options.attempts - 1 }),
        Effect.exit
      )
      if (done._tag === "Failure") {
        if (!isPoison(done.cause)) return yield* Effect.failCause(done.cause)
        yield* parkPoison(projection, event, options.generation, describeCause(done.cause))
        yield* uow.transaction(commit(one.checkpoint, 0, false))
      }
      checkpoint = one.checkpoint
      read++
      if (read >= options.batchSize) return read
    }
  })

/** A failure that is not an outage, a race or an interruption: the data or the handler. */
const isPoison = (cause: Cause.Cause<unknown>): boolean => {
  if (Cause.hasInterrupts(cause)) return false
  const error = Cause.findErrorOption(cause)
  return Option.isSome(error) ? !isRetryable(error.value) : true
}

/**
 * Asks for a rebuild of `name` (the follower does it); returns the rebuild's record. A rebuild
 * already under way is returned as it is.
 *
 * @since 0.1.0
 */
export const requestRebuild = Effect.fn("ProjectionRunner.requestRebuild")(function*(name: string) {
  const registered = yield* registry
  const entry = registered.find((p) => p.name === name)
  if (entry === undefined) return yield* Effect.fail(new ProjectionError({ reason: "NotFound", projection: name, message: `No projection ${name} (known: ${registered.map((p) => p.name).join(", ") || "none"})` }))
  if (entry.source !== "local") {
    return yield* Effect.fail(new ProjectionError({ reason: "NotRebuildable", projection: name, message: `Projection ${name} follows another service's events (${entry.source}); only projections of the local event log can be rebuilt` }))
  }
  return yield* Effect.gen(function*() {
    const { revision, state } = yield* stateOf(name)
    if (state.rebuild !== undefined) return state.rebuild
    const now = yield* Clock.currentTimeMillis
    const generation = Math.max(state.generation, ...(state.dropping ?? []).map((d) => d.generation), state.lastRebuild?.generation ?? 0) + 1
    const rebuild: Rebuild = { generation, checkpoint: "0", applied: 0, requestedAt: now, startedAt: null }
    yield* putState(name, { ...state, rebuild }, revision)
    return rebuild
  }).pipe(Effect.retry({ while: (e) => isRetryable(e), schedule: Schedule.spaced("20 millis"), times: 50 }))
})

/**
 * What the service registered (name, aggregate, mode, source, collection of each projection).
 *
 * @since 0.1.0
 */
export const registry = Effect.gen(function*() {
  const store = yield* ProjectionStore
  const found = yield* store.getState(registryKey)
  return Option.match(found, {
    onNone: () => [] as ReadonlyArray<RegistryEntry>,
    onSome: (r) => (r.value as { readonly projections: ReadonlyArray<RegistryEntry> }).projections
  })
})

/**
 * @category models
 * @since 0.1.0
 */
export interface RegistryEntry {
  readonly name: string
  readonly aggregate: string
  readonly mode: string
  readonly source: string
  readonly collection: string
}

/**
 * Status of every registered projection: checkpoint, lag, parked events, documents, rebuild.
 *
 * @since 0.1.0
 */
export const statuses = Effect.gen(function*() {
  const store = yield* ProjectionStore
  const documents = yield* DocumentStore
  const events = yield* EventStore
  const out: Array<Status> = []
  for (const entry of yield* registry) {
    const { state } = yield* stateOf(entry.name)
    let lag: number | undefined
    let lagCapped = false
    if (entry.source === "local") {
      const ahead = yield* events.readAll(state.checkpoint, 1000)
      lag = ahead.events.filter((e) => e.aggregate === entry.aggregate).length
      lagCapped = ahead.events.length === 1000
    }
    out.push({
      ...entry,
      state,
      lag,
      lagCapped,
      parked: yield* store.countParked(marksOf(entry.name, state.generation)),
      documents: yield* documents.count(collectionOf(entry.collection, state.generation))
    })
  }
  return out as ReadonlyArray<Status>
})

/**
 * Applies the parked events of `aggregateId` in projection `name` again (after a poison event's
 * cause was fixed): the one at its mark + 1 first, then what waited behind it. Returns the outcome.
 *
 * @since 0.1.0
 */
export const retryParked = Effect.fn("ProjectionRunner.retryParked")(function*(projection: Projection.Any, aggregateId: string) {
  const store = yield* ProjectionStore
  const uow = yield* UnitOfWork
  const { state } = yield* stateOf(projection.name)
  const marks = marksOf(projection.name, state.generation)
  return yield* uow.transaction(Effect.gen(function*() {
    const mark = yield* store.lock(marks, aggregateId)
    const next = yield* store.unpark(marks, aggregateId, mark + 1)
    if (Option.isNone(next)) return Option.none()
    const { error: _error, ...content } = next.value.event as Record<string, unknown>
    return Option.some(yield* projection.handle(content, { generation: state.generation }))
  }))
})

/** Deletes the documents and marks of a swapped-out generation. */
const dropGeneration = (projection: Projection.Any, generation: number) =>
  Effect.gen(function*() {
    const documents = yield* DocumentStore
    const store = yield* ProjectionStore
    const uow = yield* UnitOfWork
    const col = collectionOf(projection.collection, generation)
    for (;;) {
      const chunk = yield* documents.find(col, { condition: TRUE, limit: 500 }).pipe(Stream.runCollect)
      if (chunk.length === 0) break
      yield* uow.transaction(Effect.forEach(chunk, (d) => documents.remove(col, d.id), { discard: true }))
    }
    yield* store.clear(marksOf(projection.name, generation))
  })

/**
 * One round of the follower of `projection`: drops due generations, follows the live generation,
 * advances a rebuild. Returns the number of events read (0: idle).
 *
 * @since 0.1.0
 */
export const step = (projection: Projection.Any, options: RunnerOptions = {}) =>
  Effect.gen(function*() {
    const batchSize = options.batchSize ?? 500
    const attempts = options.attempts ?? 5
    const name = projection.name
    const now = yield* Clock.currentTimeMillis
    let { revision, state } = yield* stateOf(name)
    if (revision === 0) {
      revision = yield* putState(name, state, 0)
    }
    // swapped-out generations whose grace has passed
    for (const d of state.dropping ?? []) {
      if (d.at > now) continue
      yield* dropGeneration(projection, d.generation)
      const fresh = yield* stateOf(name)
      yield* putState(name, { ...fresh.state, dropping: (fresh.state.dropping ?? []).filter((x) => x.generation !== d.generation) }, fresh.revision)
      ;({ revision, state } = yield* stateOf(name))
    }
    // the live generation
    const live = yield* follow(projection, { checkpoint: state.checkpoint, generation: state.generation, batchSize, attempts }, (checkpoint, applied) =>
      Effect.gen(function*() {
        if (checkpoint === state.checkpoint && applied === 0) return
        const current = yield* stateOf(name)
        // another writer (a rebuild request, a second follower) moved the state: retry the step on it
        if (current.revision !== revision) {
          return yield* Effect.fail(new EventStoreError({ reason: "Conflict", message: `projection ${name}: state moved` }))
        }
        revision = yield* putState(name, { ...current.state, checkpoint, applied: current.state.applied + applied }, revision)
        state = { ...current.state, checkpoint, applied: current.state.applied + applied }
      }))
    let read = live
    // a rebuild in progress
    const rebuild = state.rebuild
    if (rebuild !== undefined) {
      if (rebuild.startedAt === null) {
        // a fresh start: nothing of an earlier, abandoned attempt at this generation may remain
        yield* dropGeneration(projection, rebuild.generation)
        const started: Rebuild = { ...rebuild, startedAt: yield* Clock.currentTimeMillis }
        revision = yield* putState(name, { ...state, rebuild: started }, revision)
        state = { ...state, rebuild: started }
        yield* Effect.logInfo(`projection ${name}: rebuilding into generation ${rebuild.generation}`)
      }
      const r = state.rebuild!
      read += yield* follow(projection, { checkpoint: r.checkpoint, generation: r.generation, batchSize, attempts }, (checkpoint, applied, caughtUp) =>
        Effect.gen(function*() {
          const current = yield* stateOf(name)
          if (current.revision !== revision) {
            return yield* Effect.fail(new EventStoreError({ reason: "Conflict", message: `projection ${name}: state moved` }))
          }
          const at = yield* Clock.currentTimeMillis
          const progressed: Rebuild = { ...r, checkpoint, applied: r.applied + applied }
          const next: State = caughtUp
            // the replay reached the head: it becomes the live generation, in this transaction
            ? {
              generation: r.generation,
              checkpoint,
              applied: progressed.applied,
              dropping: [...(current.state.dropping ?? []), { generation: current.state.generation, at: at + (options.dropAfterMs ?? 30_000) }],
              lastRebuild: { generation: r.generation, applied: progressed.applied, startedAt: r.startedAt ?? at, finishedAt: at }
            }
            : { ...current.state, rebuild: progressed }
          revision = yield* putState(name, next, revision)
          state = next
          if (caughtUp) yield* Effect.logInfo(`projection ${name}: generation ${r.generation} is live (${progressed.applied} event(s) replayed)`)
        }))
    }
    return read
  })

/**
 * The follower loop of one projection; runs until interrupted. Failures (outages, races) back off
 * and retry; idle rounds wait `pollIntervalMs`.
 *
 * @since 0.1.0
 */
export const run = (projection: Projection.Any, options: RunnerOptions = {}) => {
  const poll = Duration.millis(options.pollIntervalMs ?? 200)
  return Effect.gen(function*() {
    const failures = yield* Ref.make(0)
    const once = step(projection, options).pipe(
      Effect.tap(() => Ref.set(failures, 0)),
      Effect.sandbox,
      Effect.tapError((cause) =>
        Effect.flatMap(Ref.updateAndGet(failures, (n) => n + 1), (n) =>
          n === 1 || n % 20 === 0 ? Effect.logWarning(`projection ${projection.name}: a round failed, retrying`, cause) : Effect.void)
      ),
      Effect.retry(cappedExponential("100 millis", "5 seconds")),
      // retried forever: it never fails
      Effect.orDie
    )
    // a busy log is read again at once; an idle one after the poll interval
    const pace = Schedule.forever.pipe(
      Schedule.passthrough,
      Schedule.modifyDelay(({ input }) => Effect.succeed((input as number) > 0 ? Duration.zero : poll))
    )
    yield* once.pipe(Effect.repeat(pace))
  })
}

/**
 * The inline projections of a service, as the repository's hook (see `Repository.InlineProjections`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerInline = (projections: ReadonlyArray<Projection.Any>): Layer.Layer<InlineProjections, never, ProjectionStore | DocumentStore | UnitOfWork> =>
  Layer.effect(InlineProjections, Effect.gen(function*() {
    const context = yield* Effect.context<ProjectionStore | DocumentStore | UnitOfWork>()
    const byAggregate = new Map<string, Array<Projection.Any>>()
    for (const p of projections) {
      if (p.mode !== "inline") continue
      byAggregate.set(p.aggregate, [...(byAggregate.get(p.aggregate) ?? []), p])
    }
    return InlineProjections.of({
      apply: (aggregate, events) => {
        const mine = byAggregate.get(aggregate)
        if (mine === undefined) return Effect.void
        return Effect.forEach(mine, (p) => Effect.forEach(events, (e) => p.handle(e), { discard: true }), { discard: true }).pipe(
          Effect.provideContext(context),
          Effect.mapError((e: unknown) =>
            PortError.kindOf(e) === "Conflict"
              ? new EventStoreError({ reason: "Conflict", message: `inline projection: ${(e as Error).message}` })
              : new StorageError({ reason: isRetryable(e) ? "Unavailable" : "Unknown", message: `inline projection failed: ${(e as { message?: string }).message ?? String(e)}`, cause: e })
          )
        ) as Effect.Effect<void, EventStoreError | StorageError>
      }
    })
  }))

/**
 * Event handlers of the remote projections (`stream`, `events`), one per topic, for the router.
 *
 * @category constructors
 * @since 0.1.0
 */
export const handlers = (projections: ReadonlyArray<Projection.Any>): ReadonlyArray<Router.BrokerHandler> =>
  projections.flatMap((p) => (p.source === "local" ? [] : p.topics.map((topic) => Router.event(topic, { payload: Schema.Unknown }, (content) => Effect.asVoid(p.handle(content))))))

/**
 * Registers the projections (for `projections list` and rebuild requests) and runs the follower of
 * every local one, as a scoped background part.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (projections: ReadonlyArray<Projection.Any>, options: RunnerOptions = {}): Layer.Layer<never, never, Deps> =>
  Layer.effectDiscard(Effect.gen(function*() {
    const names = new Set<string>()
    for (const p of projections) {
      if (names.has(p.name)) return yield* Effect.die(new Error(`Two projections are named ${p.name}`))
      names.add(p.name)
    }
    const entries: ReadonlyArray<RegistryEntry> = projections.map((p) => ({ name: p.name, aggregate: p.aggregate, mode: p.mode, source: p.source, collection: p.collection }))
    const register = Effect.gen(function*() {
      const store = yield* ProjectionStore
      const found = yield* store.getState(registryKey)
      const revision = Option.match(found, { onNone: () => 0, onSome: (r) => r.revision })
      const before = Option.match(found, { onNone: () => [] as ReadonlyArray<RegistryEntry>, onSome: (r) => (r.value as { projections: ReadonlyArray<RegistryEntry> }).projections })
      // keep what other versions of the service registered, replace ours
      const merged = [...before.filter((e) => !names.has(e.name)), ...entries]
      yield* store.putState(registryKey, { projections: merged }, revision)
    }).pipe(Effect.retry({ while: isRetryable, schedule: cappedExponential("50 millis", "2 seconds"), times: 50 }))
    yield* register.pipe(Effect.catchCause((cause) => Effect.logWarning("projections: could not register them (projections list will not show them)", cause)))
    const cluster = yield* Effect.serviceOption(Leadership)
    const lead = options.leadership ??
      (Option.isSome(cluster) ? cluster.value.run : <R>(_: string, effect: Effect.Effect<void, never, R>): Effect.Effect<unknown, never, R> => effect)
    for (const p of projections) {
      if (p.source !== "local") continue
      yield* lead(`projection:${p.name}`, run(p, options)).pipe(Effect.forkScoped)
    }
  }))

/**
 * A service of the projections a microservice runs (its definition's `projections`).
 *
 * @category services
 * @since 0.1.0
 */
export class Projections extends Context.Service<Projections, ReadonlyArray<Projection.Any>>()("effect-minos/projection/Projections") {}
