/**
 * Runs sagas. An execution is a `SagaExecution` aggregate in the service's own event store: every
 * move is decided on its current state and appended at the expected version, in ONE storage
 * transaction with what it sends — remote commands, compensations and the two-phase commit's
 * messages are staged in the outbox, never published directly — so a crash can never separate
 * "step recorded" from "command sent", and any replica can act on any execution.
 *
 * - **Replies** arrive on `{Service}Reply` (one replica of the service's consumer group gets each) and
 *   are a `Reply` command on the execution: a late or duplicate reply decides nothing.
 * - **Timeouts and take-overs** are found by one sweep per cluster (`Leadership`): a paused execution
 *   past its deadline gets a `Timeout` command; one left half-way (its process died between a local
 *   transaction move and its record) is driven on after its lease.
 * - **Contention**: a participant that answers `Conflict` (it lost a race for an aggregate, e.g. two
 *   bookings of one room) gets the step again after a jittered back-off, on fresh state; a reserve
 *   that collides rolls the run back (compensations, rejects) and starts it again in a new
 *   transaction. Both count against the saga's contention budget; past it the execution fails with
 *   reason `Contention`.
 * - **Two-phase commit** (minos): the local transaction and all but the last participant reserve;
 *   the last participant is sent the commit directly (it reserves and commits in one step, the
 *   decision point); then the local transaction and the others commit. A failed reserve or decision
 *   rejects everywhere and compensates in reverse order. Commits are re-sent until acknowledged;
 *   compensations and rejects up to `maxAttempts`, then the execution is `errored` with the reason.
 * - **Statuses**: `finished`, `compensated` (failed and undone), `errored` (failed and something
 *   could not be undone); `running` / `paused` while it moves.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Context, Deferred, Duration, Effect, Exit, Layer, Option, Random, Result, Schedule, Schema, Stream } from "effect"
import * as PortError from "../errors/PortError.ts"
import * as Message from "../broker/Message.ts"
import type { OutgoingRecord } from "../broker/Broker.ts"
import { commitTopic, rejectTopic, replyTopic, reserveTopic } from "../broker/Naming.ts"
import { Leadership } from "../cluster/Leadership.ts"
import * as Condition from "../query/Condition.ts"
import * as Contract from "../router/Contract.ts"
import { EventStore } from "../eventstore/EventStore.ts"
import { stableUuid } from "../internal/Ids.ts"
import { describeCause } from "../internal/Outcome.ts"
import { Replies } from "../messaging/Replies.ts"
import { Outbox } from "../queue/Outbox.ts"
import { SnapshotStore } from "../snapshot/SnapshotStore.ts"
import { UnitOfWork } from "../storage/UnitOfWork.ts"
import { CurrentTransaction, Transactions } from "../transaction/Transactions.ts"
import * as Saga from "./Saga.ts"
import { type Definition, flatten } from "./Saga.ts"
import * as X from "./SagaExecution.ts"
import { RELATED_SERVICES_HEADER, TRANSACTIONS_HEADER } from "./Transactional.ts"

// ---------------------------------------------------------------------------------------------
// models

/**
 * @category models
 * @since 0.1.0
 */
export type ExecutionStatus = X.Status

/**
 * What `get` and `list` return.
 *
 * @category models
 * @since 0.1.0
 */
export interface Execution {
  readonly id: string
  readonly saga: string
  readonly version: number
  readonly status: ExecutionStatus
  readonly phase: X.Phase
  /** The context as JSON (encoded with the definition's Schema). */
  readonly context: unknown
  readonly steps: ReadonlyArray<X.StepRecord>
  readonly participants: ReadonlyArray<string>
  readonly failure: X.Failure | null
  /** What could not be undone or acknowledged. */
  readonly problems: ReadonlyArray<string>
  /** The failure and the problems in one line (null when it did not fail). */
  readonly error: string | null
  /** What it waits for. */
  readonly waitingFor: { readonly purpose: X.Purpose; readonly topic: string; readonly attempt: number; readonly deadline: number } | null
  readonly transaction: string
  readonly run: number
  readonly retries: number
  readonly createdAt: number
  readonly updatedAt: number
  readonly endedAt: number | null
}

/**
 * One entry of an execution's history (its stored events).
 *
 * @category models
 * @since 0.1.0
 */
export interface HistoryEntry {
  readonly version: number
  readonly type: string
  readonly at: number
  readonly data: unknown
}

/**
 * @category models
 * @since 0.1.0
 */
export interface ListOptions {
  readonly status?: ExecutionStatus | undefined
  readonly saga?: string | undefined
  /** Started before this (epoch ms). */
  readonly startedBefore?: number | undefined
  /** Started at or after this (epoch ms). */
  readonly startedAfter?: number | undefined
  readonly limit?: number | undefined
}

/**
 * @category errors
 * @since 0.1.0
 */
export class SagaError extends Schema.TaggedError<SagaError>()("SagaError", {
  reason: Schema.Literals(["NotFound", "UnknownDefinition", "InvalidContext", "Timeout", "Failed", "Refused", "Unavailable"]),
  execution: Schema.optional(Schema.String),
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
 * @category models
 * @since 0.1.0
 */
export interface ManagerOptions {
  /** This service's name: replies come back on `{Name}Reply`; it is the local participant. */
  readonly service: string
  /** Wait for a reply this long when the step sets no timeout (default 60 s). */
  readonly stepTimeout?: Duration.Input
  /** Attempts of a compensation / reserve / reject before giving up on it (default 10; commits never give up). */
  readonly maxAttempts?: number
  /** How often the cluster's sweep looks for due timeouts and stalled executions (default 1 s). */
  readonly tickInterval?: Duration.Input
  /** An execution left half-way by its process is taken over after this long (default 30 s). */
  readonly runningLease?: Duration.Input
  /** Contention retries of a saga whose definition sets none (default 16). */
  readonly contentionRetries?: number
  /** First contention back-off, doubled per retry, jittered, at most 1 s (default 20 ms). */
  readonly contentionBackoff?: Duration.Input
}

/**
 * @category services
 * @since 0.1.0
 */
export interface SagaManagerShape {
  /** Starts an execution (recorded with its first command) and returns its id. */
  readonly start: <C, R>(definition: Definition<C, R>, context: C, options?: { readonly id?: string; readonly user?: string }) => Effect.Effect<string, SagaError>
  /** Starts an execution and waits until it ended; `Failed` unless it finished. */
  readonly run: <C, R>(
    definition: Definition<C, R>,
    context: C,
    options?: { readonly timeout?: Duration.Input; readonly id?: string; readonly user?: string }
  ) => Effect.Effect<Execution, SagaError>
  readonly get: (id: string) => Effect.Effect<Execution, SagaError>
  /** Its stored events: what happened, when. */
  readonly history: (id: string) => Effect.Effect<ReadonlyArray<HistoryEntry>, SagaError>
  readonly list: (options?: ListOptions) => Effect.Effect<ReadonlyArray<Execution>, SagaError>
  /** Waits until the execution ended (on any replica). */
  readonly await: (id: string, timeout?: Duration.Input) => Effect.Effect<Execution, SagaError>
  /** Stops an execution that is still executing its steps: compensates, rejects, ends `compensated`. */
  readonly cancel: (id: string, options?: { readonly by?: string }) => Effect.Effect<Execution, SagaError>
  /** Re-opens what an `errored` execution gave up on (compensations, acknowledgements). */
  readonly retry: (id: string) => Effect.Effect<Execution, SagaError>
  /** Moves a stuck execution now: a paused one re-sends what it waits for (same message id), a running one is driven on. */
  readonly resume: (id: string) => Effect.Effect<Execution, SagaError>
}

/**
 * @category services
 * @since 0.1.0
 */
export class SagaManager extends Context.Service<SagaManager, SagaManagerShape>()("effect-minos/saga/SagaManager") {}

// ---------------------------------------------------------------------------------------------
// flattening: the steps an execution runs, with conditional choices spliced in

const stepAt = (def: Definition.Any, s: X.State, path: string) => {
  const f = flatten(def.steps, s.branches).find((x) => x._tag === "Step" && x.path === path)
  return f?._tag === "Step" ? f.step : undefined
}

const errorLine = (s: X.State): string | null => {
  const parts = [...(s.failure === null ? [] : [`${s.failure.reason}: ${s.failure.message}`]), ...s.problems]
  return parts.length === 0 ? null : parts.join("; ")
}

const toExecution = (s: X.State): Execution => ({
  id: s.id,
  saga: s.saga,
  version: s.version,
  status: s.status,
  phase: s.phase,
  context: s.context,
  steps: s.steps,
  participants: s.participants,
  failure: s.failure,
  problems: s.problems,
  error: errorLine(s),
  waitingFor: s.pause === null ? null : { purpose: s.pause.purpose, topic: s.pause.topic, attempt: s.pause.attempt, deadline: s.pause.deadline },
  transaction: s.transaction,
  run: s.run,
  retries: s.retries,
  createdAt: s.createdAt,
  updatedAt: s.updatedAt,
  endedAt: s.endedAt
})

/** A 400 body that says the participant lost a race (a stale version, a claimed one). */
const isContention = (content: unknown): boolean => {
  if (typeof content !== "object" || content === null) return false
  const c = content as { reason?: unknown; _tag?: unknown }
  return c.reason === "Conflict"
}

/** Why the driver stopped. */
type Stop =
  | { readonly _tag: "Waiting" }
  | { readonly _tag: "Ended" }
  | { readonly _tag: "Nothing" }
  | { readonly _tag: "Sleep"; readonly until: number }
  | { readonly _tag: "LocalMove"; readonly to: "reserved" | "committed" | "rejected" }
  | { readonly _tag: "LocalEffect" }

/** A local step or compensation failed: its storage transaction is rolled back, the failure recorded after. */
class LocalFailure {
  readonly events: ReadonlyArray<X.Event>
  constructor(events: ReadonlyArray<X.Event>) {
    this.events = events
  }
}

const encodeEvent = Schema.encodeSync(X.Event as unknown as Schema.Codec<X.Event, unknown>)
const decodeEvent = Schema.decodeUnknownSync(X.Event as unknown as Schema.Codec<X.Event, unknown>)
const encodeState = Schema.encodeSync(X.State as unknown as Schema.Codec<X.State, unknown>)
const decodeState = Schema.decodeUnknownSync(X.State as unknown as Schema.Codec<X.State, unknown>)
const AGGREGATE = X.SagaExecution.name

// ---------------------------------------------------------------------------------------------

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("SagaManager.make")(function*(definitions: ReadonlyArray<Definition.Any>, options: ManagerOptions) {
  const events = yield* EventStore
  const snapshots = yield* SnapshotStore
  const outbox = yield* Outbox
  const uow = yield* UnitOfWork
  const transactions = yield* Transactions
  const replies = yield* Replies
  const leadership = yield* Leadership
  const context = yield* Effect.context<never>()
  const scope = yield* Effect.scope
  const service = options.service
  const replyTo = replyTopic(service)
  const stepTimeout = Duration.toMillis(Duration.fromInputUnsafe(options.stepTimeout ?? "60 seconds"))
  const maxAttempts = options.maxAttempts ?? 10
  const lease = Duration.toMillis(Duration.fromInputUnsafe(options.runningLease ?? "30 seconds"))
  const defaultRetries = options.contentionRetries ?? 16
  const firstBackoff = Duration.toMillis(Duration.fromInputUnsafe(options.contentionBackoff ?? "20 millis"))
  const registry = new Map<string, Definition.Any>()
  for (const d of definitions) registry.set(`${d.name}@${d.version}`, yield* Saga.check(d))
  const definitionOf = (s: X.State) => registry.get(`${s.saga}@${s.version}`)
  // in-process waiters of `await`; each entry is removed when it resolves, times out or is interrupted
  const waiters = new Map<string, Set<Deferred.Deferred<Execution>>>()

  const now = Clock.currentTimeMillis
  const unavailable = (id: string | undefined, what: string) => (e: { readonly message: string }) =>
    new SagaError({ reason: "Unavailable", ...(id === undefined ? {} : { execution: id }), message: `${what}: ${e.message}`, cause: e })
  /** The manager's own reads and writes are in the main store, whatever transaction the caller is in. */
  const main = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, CurrentTransaction, undefined)

  // ------------------------------------------------------------------------------------------
  // persistence: the aggregate's snapshot + events after it; appends at the expected version

  const load = (id: string) =>
    Effect.gen(function*() {
      const snapshot = yield* snapshots.getOption(AGGREGATE, id)
      let state = Option.isSome(snapshot) ? decodeState(snapshot.value.document) : X.SagaExecution.initialState
      let version = Option.isSome(snapshot) ? snapshot.value.version : 0
      for (const e of yield* events.readStream(id, { afterVersion: version })) {
        state = X.evolve(state, decodeEvent({ ...(e.data as object), _tag: e.type }))
        version = e.version
      }
      return { state, version, createdAt: Option.isSome(snapshot) ? snapshot.value.createdAt : state.createdAt }
    })

  const write = (id: string, loaded: { readonly version: number; readonly createdAt: number }, state: X.State, produced: ReadonlyArray<X.Event>) =>
    Effect.gen(function*() {
      if (produced.length === 0) return
      const at = yield* now
      yield* events.append({
        aggregate: AGGREGATE,
        aggregateId: id,
        expectedVersion: loaded.version,
        now: at,
        events: produced.map((e) => {
          const { _tag, ...data } = encodeEvent(e) as { _tag: string }
          return { type: _tag, data }
        })
      })
      yield* snapshots.put({
        aggregate: AGGREGATE,
        aggregateId: id,
        version: loaded.version + produced.length,
        document: encodeState(state),
        deleted: false,
        createdAt: loaded.version === 0 ? state.createdAt : loaded.createdAt,
        updatedAt: at,
        transactionId: null
      })
    })

  const notify = (s: X.State) =>
    Effect.gen(function*() {
      if (!X.isFinal(s)) return
      const ws = waiters.get(s.id)
      if (ws === undefined) return
      waiters.delete(s.id)
      for (const w of ws) yield* Deferred.succeed(w, toExecution(s))
    })

  // ------------------------------------------------------------------------------------------
  // what to send

  const record = (s: X.State, requestId: string, topic: string, content: unknown, headers: Readonly<Record<string, string>>): OutgoingRecord => ({
    topic,
    key: s.id,
    value: Message.encode(Message.make({ topic, identifier: requestId, content, replyTopic: replyTo, headers })),
    headers: { "message-id": requestId, saga: s.id }
  })

  const send = (s: X.State, purpose: X.Purpose, target: string, topic: string, content: unknown, extra: Readonly<Record<string, string>>, timeoutMs: number, attempt: number, at: number) => {
    const requestId = stableUuid(`${s.id}:${s.run}:${purpose}:${target}:${attempt}`)
    const headers = { ...extra, saga: s.id, ...(s.user === null ? {} : { user: s.user }) }
    return {
      event: X.CommandSent.make({ purpose, target, topic, requestId, content, headers, deadline: at + timeoutMs, attempt, at }),
      out: record(s, requestId, topic, content, headers)
    }
  }

  const txMessage = (s: X.State, purpose: "reserve" | "commit" | "reject", participant: string, attempt: number, at: number) =>
    send(s, purpose, participant, purpose === "reserve" ? reserveTopic(participant) : purpose === "commit" ? commitTopic(participant) : rejectTopic(participant), { uuid: s.transaction }, {}, stepTimeout, attempt, at)

  const backoff = (s: X.State) =>
    Effect.map(Random.next, (r) => Math.round(Math.min(1_000, firstBackoff * 2 ** Math.min(s.retries, 6)) * (0.5 + r)))

  const budget = (def: Definition.Any | undefined) => def?.contentionRetries ?? defaultRetries

  /** Runs a hook or a local effect in the saga's transaction with the service's context. */
  const inSaga = <A>(s: X.State, effect: Effect.Effect<A, unknown, any>) =>
    effect.pipe(Effect.provideService(CurrentTransaction, s.transaction), Effect.provideContext(context as Context.Context<any>), Effect.exit)

  // ------------------------------------------------------------------------------------------
  // the driver: from a state, the events of the next moves until it waits, ends or must leave the
  // storage transaction (a local transaction move, a local effect in a transaction of its own)

  const advance = (start: X.State, def: Definition.Any | undefined, fresh: boolean) =>
    Effect.gen(function*() {
      let s = start
      const produced: Array<X.Event> = []
      const out: Array<OutgoingRecord> = []
      const emit = (...es: ReadonlyArray<X.Event>) => {
        for (const e of es) {
          produced.push(e)
          s = X.evolve(s, e)
        }
      }
      const at = yield* now
      const decode = def === undefined ? (u: unknown) => u : Schema.decodeUnknownSync(def.context)
      const encode = def === undefined ? (u: unknown) => u : Schema.encodeSync(def.context)
      for (let guard = 0; guard < 10_000; guard++) {
        if (X.isFinal(s)) return { s, produced, out, stop: { _tag: "Ended" } as Stop }
        if (s.pause !== null) return { s, produced, out, stop: { _tag: "Waiting" } as Stop }
        if (s.retryAt !== null && s.retryAt > at && s.phase === "executing") return { s, produced, out, stop: { _tag: "Sleep", until: s.retryAt } as Stop }
        if (def === undefined && s.phase !== "rejecting" && s.phase !== "done") {
          emit(
            X.Failed.make({ reason: "DefinitionMissing", step: null, message: `Saga ${s.saga} version ${s.version} is not registered any more; the execution cannot go on`, at }),
            X.PhaseEntered.make({ phase: "rejecting", pending: [...s.participants], at })
          )
          continue
        }
        switch (s.phase) {
          case "executing": {
            if (s.deadline !== null && at > s.deadline) {
              emit(X.Failed.make({ reason: "Timeout", step: null, message: "the saga timed out", at }))
              continue
            }
            const next = flatten(def!.steps, s.branches)[s.cursor]
            if (next === undefined) {
              // all steps done: the two-phase commit
              if (s.participants.length === 0) emit(X.PhaseEntered.make({ phase: "committing", pending: [], at }))
              else emit(X.PhaseEntered.make({ phase: "reserving", pending: s.participants.slice(0, -1), at }))
              continue
            }
            if (next._tag === "Decision") {
              const ctx = decode(s.context)
              const i = next.step.branches.findIndex((b) => b.when(ctx))
              emit(X.BranchChosen.make({ path: next.path, branch: i >= 0 ? i : next.step.otherwise !== undefined ? -1 : -2, at }))
              continue
            }
            const step = next.step
            if (step._tag === "Local") {
              if (!fresh || produced.length > 0) return { s, produced, out, stop: { _tag: "LocalEffect" } as Stop }
              emit(X.StepStarted.make({ path: next.path, name: step.name, kind: "local", at }))
              const exit = yield* inSaga(s, step.execute(decode(s.context)))
              if (Exit.isFailure(exit)) {
                const error = Cause.findErrorOption(exit.cause)
                const contention = Option.isSome(error) && PortError.isPortError(error.value) && error.value.reason === "Conflict"
                return yield* Effect.fail(new LocalFailure([
                  X.StepStarted.make({ path: next.path, name: step.name, kind: "local", at }),
                  X.Failed.make({ reason: contention ? "Contention" : "StepFailed", step: step.name, message: `step ${step.name} failed: ${describeCause(exit.cause)}`, at })
                ]))
              }
              emit(X.StepFinished.make({ path: next.path, context: encode(exit.value), participants: [], at }))
              continue
            }
            const current = s.steps.find((r) => r.path === next.path)
            const attempt = (current?.attempts ?? 0) + 1
            const request = step.execute(decode(s.context))
            emit(X.StepStarted.make({ path: next.path, name: step.name, kind: "remote", at }))
            const sent = send(s, "execute", next.path, request.topic, request.content, { ...request.headers, [TRANSACTIONS_HEADER]: s.transaction }, step.timeout ? Duration.toMillis(step.timeout) : stepTimeout, attempt, at)
            emit(sent.event)
            out.push(sent.out)
            continue
          }
          case "compensating": {
            const index = s.toCompensate[0]
            if (index === undefined) {
              emit(X.PhaseEntered.make({ phase: "rejecting", pending: [...s.participants], at }))
              continue
            }
            const entry = s.steps[index]!
            const step = def === undefined ? undefined : stepAt(def, s, entry.path)
            const compensate = step?.compensate
            if (compensate === undefined || step === undefined) {
              emit(X.Acknowledged.make({ purpose: "compensate", target: String(index), at }))
              continue
            }
            if (step._tag === "Local") {
              if (!fresh || produced.length > 0) return { s, produced, out, stop: { _tag: "LocalEffect" } as Stop }
              const exit = yield* inSaga(s, (compensate as (c: unknown) => Effect.Effect<void, unknown, any>)(decode(s.context)))
              if (Exit.isFailure(exit)) {
                return yield* Effect.fail(new LocalFailure([
                  X.GaveUp.make({ purpose: "compensate", target: String(index), message: `compensation of ${entry.name} failed: ${describeCause(exit.cause)}`, at })
                ]))
              }
              emit(X.Acknowledged.make({ purpose: "compensate", target: String(index), at }))
              continue
            }
            const request = (compensate as (c: unknown) => Saga.SagaRequest)(decode(s.context))
            const sent = send(s, "compensate", String(index), request.topic, request.content, { ...request.headers }, stepTimeout, 1, at)
            emit(sent.event)
            out.push(sent.out)
            continue
          }
          case "reserving": {
            if (!s.localDone) return { s, produced, out, stop: { _tag: "LocalMove", to: "reserved" } as Stop }
            const participant = s.pending[0]
            if (participant !== undefined) {
              const sent = txMessage(s, "reserve", participant, 1, at)
              emit(sent.event)
              out.push(sent.out)
              continue
            }
            // the last participant decides: its commit reserves and commits in one step; the local
            // transaction (reserved) and the others commit after it
            const decider = s.participants[s.participants.length - 1]!
            emit(X.PhaseEntered.make({ phase: "committing", pending: [decider, ...s.participants.slice(0, -1)], at }))
            continue
          }
          case "committing": {
            const participant = s.pending[0]
            if (isDeciding(s) && participant !== undefined) {
              const sent = txMessage(s, "commit", participant, 1, at)
              emit(sent.event)
              out.push(sent.out)
              continue
            }
            if (!s.localDone) return { s, produced, out, stop: { _tag: "LocalMove", to: "committed" } as Stop }
            if (participant !== undefined) {
              const sent = txMessage(s, "commit", participant, 1, at)
              emit(sent.event)
              out.push(sent.out)
              continue
            }
            emit(X.Ended.make({ status: s.problems.length === 0 ? "finished" : "errored", at }))
            continue
          }
          case "rejecting": {
            if (!s.localDone) return { s, produced, out, stop: { _tag: "LocalMove", to: "rejected" } as Stop }
            const participant = s.pending[0]
            if (participant !== undefined) {
              const sent = txMessage(s, "reject", participant, 1, at)
              emit(sent.event)
              out.push(sent.out)
              continue
            }
            if (s.failure?.reason === "Contention" && s.retries < budget(def)) {
              // rolled back everywhere: the next run starts from the first step on fresh state
              const transaction = stableUuid(`${s.id}:run:${s.run + 1}`)
              yield* transactions.begin({ id: transaction })
              emit(X.RunRestarted.make({ transaction, until: at + (yield* backoff(s)), at }))
              continue
            }
            emit(X.Ended.make({ status: s.problems.length === 0 && s.failure?.reason !== "DefinitionMissing" ? "compensated" : "errored", at }))
            continue
          }
          case "done":
            return { s, produced, out, stop: { _tag: "Ended" } as Stop }
        }
      }
      return yield* Effect.die(new Error(`saga ${s.id}: the driver did not stop`))
    })

  /** What a reply or a timeout to the current pause means. */
  const outcome = (s: X.State, def: Definition.Any | undefined, pause: X.Pause, reply: { readonly status: number; readonly content: unknown } | "timeout", at: number) =>
    Effect.gen(function*() {
      const produced: Array<X.Event> = []
      const out: Array<OutgoingRecord> = []
      const again = (reason: string, forever: boolean) => {
        if (!forever && pause.attempt >= maxAttempts) {
          produced.push(X.GaveUp.make({ purpose: pause.purpose, target: pause.target, message: `${pause.topic} not acknowledged after ${pause.attempt} attempts (${reason})`, at }))
          return
        }
        const requestId = stableUuid(`${s.id}:${s.run}:${pause.purpose}:${pause.target}:${pause.attempt + 1}`)
        produced.push(X.CommandSent.make({ ...pause, requestId, attempt: pause.attempt + 1, deadline: at + Math.max(stepTimeout, pause.deadline - pause.sentAt), at }))
        out.push(record(s, requestId, pause.topic, pause.content, pause.headers))
      }
      const status = reply === "timeout" ? 0 : reply.status
      const content = reply === "timeout" ? undefined : reply.content
      const text = (c: unknown) => JSON.stringify(c ?? null).slice(0, 300)
      switch (pause.purpose) {
        case "execute": {
          // without its definition the driver fails it as DefinitionMissing
          if (def === undefined) break
          const step = stepAt(def, s, pause.target)
          const remote = step?._tag === "Remote" ? step : undefined
          const name = remote?.name ?? pause.target
          const fail = (reason: X.FailureReason, message: string) => produced.push(X.Failed.make({ reason, step: name, message, at }))
          if (reply === "timeout") {
            fail("Timeout", s.deadline !== null && at >= s.deadline ? "the saga timed out" : `no reply to ${pause.topic} in time`)
            break
          }
          if (remote === undefined) break
          if (status === 400 && isContention(content) && remote.onError === undefined) {
            if (s.retries < budget(def)) {
              produced.push(X.BackedOff.make({ until: at + (yield* backoff(s)), message: `${pause.topic}: ${text(content)}`, at }))
            } else {
              fail("Contention", `step ${name} lost the race for an aggregate ${s.retries + 1} times: ${text(content)}`)
            }
            break
          }
          const contract = remote.contract
          const decoded = contract === undefined
            ? status === 200 ? { _tag: "Success" as const, value: content } : status === 400 ? { _tag: "Error" as const, error: content } : { _tag: "Failed" as const, message: `${pause.topic} replied ${status}: ${text(content)}`, invalid: false }
            : Contract.decodeReply(contract, status, content)
          const hook = decoded._tag === "Success" ? (remote.onSuccess ?? ((c: unknown) => Effect.succeed(c))) : decoded._tag === "Error" ? remote.onError : undefined
          if (hook === undefined || decoded._tag === "Failed") {
            fail("StepFailed", decoded._tag === "Failed" ? decoded.message : `${pause.topic} replied ${status}: ${text(content)}`)
            break
          }
          const ctx = Schema.decodeUnknownSync(def!.context)(s.context)
          const exit = yield* inSaga(s, uow.transaction(hook(ctx, decoded._tag === "Success" ? decoded.value : decoded.error)))
          if (Exit.isFailure(exit)) {
            fail("StepFailed", `step ${name} failed: ${describeCause(exit.cause)}`)
            break
          }
          produced.push(X.StepFinished.make({ path: pause.target, context: Schema.encodeSync(def!.context)(exit.value), participants: [], at }))
          break
        }
        case "compensate":
          if (status === 200) produced.push(X.Acknowledged.make({ purpose: "compensate", target: pause.target, at }))
          else again(reply === "timeout" ? "no reply" : `status ${status}`, false)
          break
        case "reserve":
          if (status === 200) produced.push(X.Acknowledged.make({ purpose: "reserve", target: pause.target, at }))
          else if (status === 400) produced.push(X.Failed.make({ reason: isContention(content) ? "Contention" : "Rejected", step: null, message: `${pause.target} could not reserve the transaction: ${text(content)}`, at }))
          else again(reply === "timeout" ? "no reply" : `status ${status}`, false)
          break
        case "commit": {
          const deciding = isDeciding(s)
          if (status === 200) produced.push(X.Acknowledged.make({ purpose: "commit", target: pause.target, at }))
          else if (status === 400 && deciding) produced.push(X.Failed.make({ reason: isContention(content) ? "Contention" : "Rejected", step: null, message: `${pause.target} could not commit the transaction: ${text(content)}`, at }))
          else if (status === 400) produced.push(X.GaveUp.make({ purpose: "commit", target: pause.target, message: `${pause.target} refused to commit after the others did: ${text(content)}`, at }))
          // once reserved, a commit is re-sent until it is answered (giving up would split the saga);
          // a participant that keeps failing it (500) is given up on after maxAttempts, visibly
          else again(reply === "timeout" ? "no reply" : `status ${status}`, reply === "timeout")
          break
        }
        case "reject":
          if (status === 200) produced.push(X.Acknowledged.make({ purpose: "reject", target: pause.target, at }))
          else if (status === 400) produced.push(X.GaveUp.make({ purpose: "reject", target: pause.target, message: `${pause.target} refused to reject: ${text(content)}`, at }))
          else again(reply === "timeout" ? "no reply" : `status ${status}`, false)
          break
      }
      return { produced, out }
    })

  /** In the commit phase, the decider has not answered yet (the local transaction is still only reserved). */
  const isDeciding = (s: X.State) => s.phase === "committing" && !s.localDone && s.participants.length > 0 && s.pending.length === s.participants.length

  // ------------------------------------------------------------------------------------------
  // one move: a command, then the driver, in one storage transaction; conflicts decided again

  type Input =
    | { readonly _tag: "Command"; readonly command: X.Command }
    | { readonly _tag: "Reply"; readonly requestId: string; readonly status: number; readonly content: unknown; readonly participants: ReadonlyArray<string> }
    | { readonly _tag: "Timeout"; readonly requestId: string }
    | { readonly _tag: "Drive" }

  const once = (id: string, input: Input, fresh: boolean) =>
    uow.transaction(Effect.gen(function*() {
      const loaded = yield* load(id)
      let s = loaded.state
      if (s.id === "") return yield* Effect.fail(new SagaError({ reason: "NotFound", execution: id, message: `No saga execution ${id}` }))
      const at = yield* now
      const def = definitionOf(s)
      const produced: Array<X.Event> = []
      const out: Array<OutgoingRecord> = []
      const apply = (es: ReadonlyArray<X.Event>) => {
        for (const e of es) {
          produced.push(e)
          s = X.evolve(s, e)
        }
      }
      const decided = (command: X.Command) => {
        const r = X.decide(command, s)
        if (Result.isFailure(r)) return Effect.fail(new SagaError({ reason: "Refused", execution: id, message: r.failure.message }))
        return Effect.succeed(r.success)
      }
      switch (input._tag) {
        case "Command":
          apply(yield* decided(input.command))
          break
        case "Reply":
        case "Timeout": {
          const pause = s.pause
          const first = input._tag === "Reply"
            ? yield* decided({ _tag: "Reply", requestId: input.requestId, status: input.status, participants: input.participants, at })
            : yield* decided({ _tag: "Timeout", requestId: input.requestId, at })
          if (first.length === 0 || pause === null) return { state: s, stop: { _tag: "Nothing" } as Stop }
          apply(first)
          const o = yield* outcome(s, def, pause, input._tag === "Reply" ? { status: input.status, content: input.content } : "timeout", at)
          apply(o.produced)
          out.push(...o.out)
          break
        }
        case "Drive":
          break
      }
      const r = yield* advance(s, def, fresh && produced.length === 0)
      apply(r.produced)
      out.push(...r.out)
      // a driver that leaves the storage transaction holds a lease; the sweep takes over after it
      if (r.stop._tag === "LocalMove" || r.stop._tag === "LocalEffect") apply([X.Leased.make({ wakeAt: at + lease, at })])
      yield* write(id, loaded, s, produced)
      if (out.length > 0) yield* outbox.stage(out)
      return { state: s, stop: r.stop }
    })).pipe(
      main,
      Effect.retry({
        times: 20,
        schedule: Schedule.exponential("5 millis").pipe(Schedule.jittered),
        while: (e) => PortError.isPortError(e) && e._tag === "EventStoreError" && e.reason === "Conflict"
      })
    )

  const moveLocal = (s: X.State, to: "reserved" | "committed" | "rejected") =>
    Effect.gen(function*() {
      const current = yield* transactions.get(s.transaction).pipe(
        Effect.map((t) => t.status as string),
        Effect.catchIf((e) => e.reason === "NotFound", () => Effect.succeed("unknown"))
      )
      const at = yield* now
      const moved = X.LocalTransactionMoved.make({ to, at })
      if (current === to || (to === "reserved" && current === "committed") || (to === "rejected" && current === "unknown")) return [moved]
      const exit = yield* Effect.exit(to === "reserved" ? transactions.reserve(s.transaction) : to === "committed" ? transactions.commit(s.transaction) : transactions.reject(s.transaction))
      if (Exit.isSuccess(exit)) return [moved]
      const error = Cause.findErrorOption(exit.cause)
      if (Option.isSome(error) && error.value.isRetryable) return yield* Effect.failCause(exit.cause)
      const message = `the local transaction could not move to ${to}: ${describeCause(exit.cause)}`
      if (to === "rejected") return [X.GaveUp.make({ purpose: "reject", target: service, message, at })]
      // after the decider committed, the local commit can only be retried, not undone
      if (to === "committed" && s.participants.length > 0) return [X.GaveUp.make({ purpose: "commit", target: service, message, at })]
      const contention = Option.isSome(error) && error.value.reason === "Conflict"
      return [X.Failed.make({ reason: contention ? "Contention" : "Rejected", step: null, message, at })]
    })

  /** Drives an execution until it waits or ends (local moves and local effects in between). */
  const drive = (id: string, input: Input): Effect.Effect<X.State, SagaError> =>
    Effect.gen(function*() {
      let next: Input = input
      let fresh = false
      for (;;) {
        const r = yield* once(id, next, fresh).pipe(
          Effect.catch((e: unknown) => {
            if (e instanceof LocalFailure) return Effect.succeed({ failed: e.events } as const)
            return Effect.fail(e instanceof SagaError ? e : new SagaError({ reason: "Unavailable", execution: id, message: `saga ${id}: ${(e as { message?: string }).message ?? String(e)}`, cause: e }))
          })
        )
        if ("failed" in r) {
          next = { _tag: "Command", command: { _tag: "Progress", events: r.failed } }
          fresh = false
          continue
        }
        yield* notify(r.state)
        switch (r.stop._tag) {
          case "LocalMove": {
            const es = yield* moveLocal(r.state, r.stop.to).pipe(Effect.mapError(unavailable(id, "local transaction")))
            next = { _tag: "Command", command: { _tag: "Progress", events: es } }
            fresh = false
            continue
          }
          case "LocalEffect":
            next = { _tag: "Drive" }
            fresh = true
            continue
          case "Sleep":
            yield* wakeLater(id, r.stop.until)
            return r.state
          default:
            return r.state
        }
      }
    }).pipe(Effect.withSpan("SagaManager.drive", { attributes: { execution: id } }))

  const wakeLater = (id: string, until: number) =>
    Effect.gen(function*() {
      const wait = Math.max(0, until - (yield* now))
      yield* Effect.sleep(Duration.millis(wait)).pipe(
        Effect.andThen(drive(id, { _tag: "Drive" })),
        Effect.catchCause((c) => Cause.hasInterruptsOnly(c) ? Effect.void : Effect.logWarning(`saga ${id}: wake-up failed; the sweep retries`, c)),
        Effect.forkIn(scope)
      )
    })

  const background = (id: string, input: Input) =>
    drive(id, input).pipe(
      Effect.catchCause((c) => Cause.hasInterruptsOnly(c) ? Effect.void : Effect.logWarning(`saga ${id}: stopped on an error; the sweep takes it over`, c)),
      Effect.asVoid
    )

  // ------------------------------------------------------------------------------------------
  // the API

  const start = Effect.fn("SagaManager.start")(function*<C, R>(definition: Definition<C, R>, input: C, startOptions?: { readonly id?: string; readonly user?: string }) {
    if (registry.get(`${definition.name}@${definition.version}`) === undefined) {
      return yield* Effect.fail(new SagaError({ reason: "UnknownDefinition", message: `Saga ${definition.name} v${definition.version} is not registered with the manager` }))
    }
    const encoded = yield* Schema.encodeEffect(definition.context)(input).pipe(
      Effect.mapError((e) => new SagaError({ reason: "InvalidContext", message: e.message }))
    )
    const id = startOptions?.id ?? crypto.randomUUID()
    const at = yield* now
    const started = X.SagaStarted.make({
      id,
      saga: definition.name,
      version: definition.version,
      context: encoded,
      transaction: id,
      deadline: definition.timeout === undefined ? null : at + Duration.toMillis(definition.timeout),
      user: startOptions?.user ?? null,
      at
    })
    // the execution, its transaction and its first command: one storage transaction
    const first = yield* uow.transaction(Effect.gen(function*() {
      const loaded = yield* load(id)
      const decided = X.decide({ _tag: "Start", event: started }, loaded.state)
      if (Result.isFailure(decided)) return yield* Effect.fail(new SagaError({ reason: "Refused", execution: id, message: decided.failure.message }))
      yield* transactions.begin({ id })
      const s0 = X.evolve(loaded.state, started)
      const r = yield* advance(s0, definition as Definition.Any, false)
      const extra = r.stop._tag === "LocalMove" || r.stop._tag === "LocalEffect" ? [X.Leased.make({ wakeAt: at + lease, at })] : []
      const state = extra.reduce(X.evolve, r.s)
      yield* write(id, loaded, state, [started, ...r.produced, ...extra])
      if (r.out.length > 0) yield* outbox.stage(r.out)
      return { state, stop: r.stop }
    })).pipe(
      main,
      Effect.catch((e: unknown) => Effect.fail(e instanceof SagaError ? e : new SagaError({ reason: "Unavailable", execution: id, message: `Cannot start saga ${id}: ${(e as { message?: string }).message ?? String(e)}`, cause: e })))
    )
    yield* notify(first.state)
    if (first.stop._tag === "LocalMove" || first.stop._tag === "LocalEffect") {
      yield* background(id, { _tag: "Drive" }).pipe(Effect.forkIn(scope))
    }
    return id
  })

  const loadOrFail = (id: string) =>
    main(load(id)).pipe(
      Effect.mapError(unavailable(id, "load")),
      Effect.flatMap((l) => l.state.id === "" ? Effect.fail(new SagaError({ reason: "NotFound", execution: id, message: `No saga execution ${id}` })) : Effect.succeed(l.state))
    )

  const get = Effect.fn("SagaManager.get")(function*(id: string) {
    return toExecution(yield* loadOrFail(id))
  })

  const history = Effect.fn("SagaManager.history")(function*(id: string) {
    yield* loadOrFail(id)
    const stored = yield* main(events.readStream(id)).pipe(Effect.mapError(unavailable(id, "history")))
    return stored.map((e) => ({ version: e.version, type: e.type, at: Number((e.data as { at?: number }).at ?? e.createdAt), data: e.data }))
  })

  const list = Effect.fn("SagaManager.list")(function*(listOptions: ListOptions = {}) {
    const conditions = [
      ...(listOptions.status === undefined ? [] : [Condition.equal("status", listOptions.status)]),
      ...(listOptions.saga === undefined ? [] : [Condition.equal("saga", listOptions.saga)]),
      ...(listOptions.startedBefore === undefined ? [] : [Condition.lower("createdAt", listOptions.startedBefore)]),
      ...(listOptions.startedAfter === undefined ? [] : [Condition.greaterEqual("createdAt", listOptions.startedAfter)])
    ]
    const found = yield* main(Stream.runCollect(snapshots.find(X.SagaExecution, {
      condition: conditions.length === 0 ? Condition.TRUE : Condition.and(...conditions),
      ordering: Condition.asc("createdAt"),
      limit: listOptions.limit ?? 1000
    }))).pipe(Effect.mapError(unavailable(undefined, "list")))
    return Array.from(found, (r) => toExecution(decodeState(r.document)))
  })

  const awaitDone = Effect.fn("SagaManager.await")(function*(id: string, timeout: Duration.Input = "60 seconds") {
    const d = yield* Deferred.make<Execution>()
    const set = waiters.get(id) ?? new Set()
    set.add(d)
    waiters.set(id, set)
    const forget = Effect.sync(() => {
      const ws = waiters.get(id)
      ws?.delete(d)
      if (ws?.size === 0) waiters.delete(id)
    })
    // the execution may end on another replica: poll as well
    const poll = get(id).pipe(
      Effect.repeat({ schedule: Schedule.spaced("250 millis"), until: (e) => e.status === "finished" || e.status === "compensated" || e.status === "errored" })
    )
    return yield* Effect.raceFirst(Deferred.await(d), poll).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(new SagaError({ reason: "Timeout", execution: id, message: `Saga ${id} did not end in time` }))
      }),
      Effect.ensuring(forget)
    )
  })

  const run = Effect.fn("SagaManager.run")(function*<C, R>(definition: Definition<C, R>, input: C, runOptions?: { readonly timeout?: Duration.Input; readonly id?: string; readonly user?: string }) {
    const id = runOptions?.id ?? crypto.randomUUID()
    // wait before starting: an execution may end within `start`
    const d = yield* Deferred.make<Execution>()
    waiters.set(id, new Set([d]))
    yield* start(definition, input, { ...runOptions, id }).pipe(Effect.tapError(() => Effect.sync(() => waiters.delete(id))))
    const done = yield* Effect.raceFirst(Deferred.await(d), awaitDone(id, runOptions?.timeout)).pipe(Effect.ensuring(Effect.sync(() => {
      const ws = waiters.get(id)
      ws?.delete(d)
      if (ws?.size === 0) waiters.delete(id)
    })))
    if (done.status !== "finished") return yield* Effect.fail(new SagaError({ reason: "Failed", execution: id, message: done.error ?? `the saga ended ${done.status}` }))
    return done
  })

  const commandNow = (id: string, command: (at: number) => X.Command) =>
    Effect.gen(function*() {
      const at = yield* now
      return toExecution(yield* drive(id, { _tag: "Command", command: command(at) }))
    })

  const cancel = Effect.fn("SagaManager.cancel")(function*(id: string, cancelOptions?: { readonly by?: string }) {
    return yield* commandNow(id, (at) => ({ _tag: "Cancel", by: cancelOptions?.by ?? null, at }))
  })

  const retry = Effect.fn("SagaManager.retry")(function*(id: string) {
    return yield* commandNow(id, (at) => ({ _tag: "Retry", at }))
  })

  const resume = Effect.fn("SagaManager.resume")(function*(id: string) {
    const s = yield* loadOrFail(id)
    if (X.isFinal(s)) return yield* Effect.fail(new SagaError({ reason: "Refused", execution: id, message: `Execution ${id} already ended (${s.status}); retry an errored one instead` }))
    if (s.pause !== null) {
      // the same message id: a receiver that had it does nothing, one that missed it handles it
      const pause = s.pause
      yield* main(outbox.stage([record(s, pause.requestId, pause.topic, pause.content, pause.headers)])).pipe(Effect.mapError(unavailable(id, "resume")))
      return toExecution(s)
    }
    return toExecution(yield* drive(id, { _tag: "Drive" }))
  })

  // replies: only those naming an execution in their `saga` header
  yield* replies.listen((reply) => {
    const id = reply.payload.headers["saga"]
    if (id === undefined) return Effect.void
    const participants = (reply.payload.headers[RELATED_SERVICES_HEADER] ?? "").split(",").map((x) => x.trim()).filter((p) => p.length > 0 && p !== service)
    return drive(id, { _tag: "Reply", requestId: reply.identifier, status: Message.normalizeStatus(reply.payload.status), content: reply.payload.content, participants }).pipe(
      Effect.asVoid,
      Effect.catchTag("SagaError", (e) => (e.reason === "NotFound" || e.reason === "Refused" ? Effect.void : Effect.fail(e)))
    )
  })

  // the cluster's sweep: due timeouts, ended back-offs, expired leases
  const tick = Duration.fromInputUnsafe(options.tickInterval ?? "1 second")
  const sweep = Effect.gen(function*() {
    const at = yield* now
    const due = yield* main(Stream.runCollect(snapshots.find(X.SagaExecution, {
      condition: Condition.and(Condition.isIn("status", ["running", "paused"]), Condition.lowerEqual("wakeAt", at)),
      ordering: Condition.asc("wakeAt"),
      limit: 200
    })))
    yield* Effect.forEach(Array.from(due, (r) => decodeState(r.document)), (s) =>
      (s.pause !== null ? drive(s.id, { _tag: "Timeout", requestId: s.pause.requestId }) : drive(s.id, { _tag: "Drive" })).pipe(
        Effect.catchCause((c) => Effect.logWarning(`saga ${s.id}: sweep could not move it`, c))
      ), { concurrency: 4, discard: true })
  })
  yield* leadership.run(`saga-sweep:${service}`, sweep.pipe(
    Effect.catchCause((c) => Effect.logWarning("saga manager: sweep failed", c)),
    Effect.repeat(Schedule.spaced(tick))
  )).pipe(Effect.forkScoped)

  return SagaManager.of({ start, run, get, history, list, await: awaitDone, cancel, retry, resume })
})

/**
 * The manager as a layer (the runtime provides the storage, replies and leadership).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (definitions: ReadonlyArray<Definition.Any>, options: ManagerOptions) => Layer.effect(SagaManager, make(definitions, options))
