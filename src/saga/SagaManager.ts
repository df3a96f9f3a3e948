/**
 * Runs sagas: executes their steps, persists the execution at every pause and step boundary
 * (`SagaStore`), resumes it when the reply arrives — also after a restart — compensates completed
 * steps in reverse order when one fails, and finishes with minos's two-phase commit across the
 * participants, this time acknowledged and retried.
 *
 * - A remote step's command carries `reply_topic = {Service}Reply`, header `saga` = execution id,
 *   `transactions` = the execution's transaction, and a deterministic identifier (execution, step,
 *   purpose, attempt): re-sending it after a crash is deduplicated by the receiver's inbox.
 * - Replies that do not match the paused request (late, duplicate, for a finished execution) are
 *   ignored. Timeouts per remote step and per saga fail the step.
 * - Compensation commands and the commit/reject messages wait for their acknowledgement and are
 *   re-sent (new attempt) until acknowledged, up to `maxAttempts`; then the execution is `errored`
 *   with the reason, visible in `get`/`list`.
 * - Definitions are registered by name and version; an execution keeps the version it started with.
 *   An execution whose version is no longer registered fails explicitly instead of running new code.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Context, Deferred, Duration, Effect, Exit, Layer, Option, Schema, Semaphore } from "effect"
import * as PortError from "../errors/PortError.ts"
import { Broker } from "../broker/Broker.ts"
import { stableUuid } from "../internal/Ids.ts"
import * as Message from "../broker/Message.ts"
import { commitTopic, rejectTopic, replyTopic, reserveTopic } from "../broker/Naming.ts"
import { Replies } from "../messaging/Replies.ts"
import { CurrentTransaction, Transactions } from "../transaction/Transactions.ts"
import { describeCause } from "../internal/Outcome.ts"
import type { Definition, Step } from "./Saga.ts"
import { type ExecutionRecord, type ExecutionStatus, SagaStore, type SagaStoreError } from "./SagaStore.ts"
import { RELATED_SERVICES_HEADER, TRANSACTIONS_HEADER } from "./Transactional.ts"

// ---------------------------------------------------------------------------------------------
// models

/**
 * @category models
 * @since 0.1.0
 */
export type StepStatus = "running" | "paused" | "finished" | "errored" | "compensating" | "compensated" | "compensation-failed"

/**
 * One step of an execution's history.
 *
 * @category models
 * @since 0.1.0
 */
export interface StepRecord {
  readonly path: string
  readonly name: string
  readonly kind: "remote" | "local"
  status: StepStatus
  readonly startedAt: number
  finishedAt: number | null
  error: string | null
  /** Set when the step reached the point where it needs compensating (remote: the command was sent). */
  compensable: boolean
}

type Purpose = "execute" | "compensate" | "reserve" | "commit" | "reject"

interface Pause {
  readonly purpose: Purpose
  readonly requestId: string
  readonly topic: string
  readonly content: unknown
  readonly headers: Readonly<Record<string, string>>
  readonly deadline: number
  readonly attempt: number
  /** History index (execute/compensate) or participant (reserve/commit/reject). */
  readonly target: string
}

interface State {
  readonly id: string
  readonly saga: string
  readonly version: number
  status: ExecutionStatus
  context: unknown
  readonly transaction: string
  /** Choices of conditional steps: step path → branch index (-1: otherwise, -2: none). */
  branches: Record<string, number>
  /** Flattened steps done (finished or skipped). */
  cursor: number
  history: Array<StepRecord>
  phase: "executing" | "compensating" | "reserving" | "committing" | "rejecting" | "done"
  paused: Pause | null
  participants: Array<string>
  /** Participants still to reserve/commit/reject, in order. */
  pending: Array<string>
  /** History indexes still to compensate, in order. */
  toCompensate: Array<number>
  error: string | null
  readonly deadline: number | null
  readonly user: string | null
  readonly createdAt: number
  updatedAt: number
}

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
  readonly phase: State["phase"]
  /** The context as JSON (encoded with the definition's Schema). */
  readonly context: unknown
  readonly steps: ReadonlyArray<StepRecord>
  readonly participants: ReadonlyArray<string>
  readonly error: string | null
  readonly createdAt: number
  readonly updatedAt: number
}

/**
 * @category errors
 * @since 0.1.0
 */
export class SagaError extends Schema.TaggedError<SagaError>()("SagaError", {
  reason: Schema.Literals(["NotFound", "UnknownDefinition", "InvalidContext", "Timeout", "Failed", "Unavailable"]),
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
  /** Attempts of a compensation / commit / reject message before the execution is marked errored (default 10). */
  readonly maxAttempts?: number
  /** How often due timeouts are looked for (default 1 s). */
  readonly tickInterval?: Duration.Input
  /**
   * An execution left `created`/`running` without a change for this long was interrupted (its process
   * died mid-step): it is taken over — started, or failed and compensated (default 30 s).
   */
  readonly runningLease?: Duration.Input
}

/**
 * @category services
 * @since 0.1.0
 */
export interface SagaManagerShape {
  /** Starts an execution and returns its id without waiting. */
  readonly start: <C, R>(definition: Definition<C, R>, context: C, options?: { readonly id?: string; readonly user?: string }) => Effect.Effect<string, SagaError>
  /** Starts an execution and waits until it finished (or errored: `Failed`), at most `timeout`. */
  readonly run: <C, R>(
    definition: Definition<C, R>,
    context: C,
    options?: { readonly timeout?: Duration.Input; readonly id?: string; readonly user?: string }
  ) => Effect.Effect<Execution, SagaError>
  readonly get: (id: string) => Effect.Effect<Execution, SagaError>
  readonly list: (options?: { readonly status?: ExecutionStatus | undefined; readonly saga?: string | undefined; readonly limit?: number | undefined }) => Effect.Effect<ReadonlyArray<Execution>, SagaError>
  /** Waits until the execution is finished or errored. */
  readonly await: (id: string, timeout?: Duration.Input) => Effect.Effect<Execution, SagaError>
}

/**
 * @category services
 * @since 0.1.0
 */
export class SagaManager extends Context.Service<SagaManager, SagaManagerShape>()("effect-minos/saga/SagaManager") {}

// ---------------------------------------------------------------------------------------------
// flattening: the steps an execution runs, with conditional choices spliced in

type Flat<C, R> =
  | { readonly _tag: "Step"; readonly path: string; readonly step: Exclude<Step<C, R>, { _tag: "Conditional" }> }
  | { readonly _tag: "Decision"; readonly path: string; readonly step: Extract<Step<C, R>, { _tag: "Conditional" }> }

const flatten = <C, R>(steps: ReadonlyArray<Step<C, R>>, branches: Record<string, number>, prefix = ""): Array<Flat<C, R>> => {
  const out: Array<Flat<C, R>> = []
  steps.forEach((step, i) => {
    const path = `${prefix}${i}`
    if (step._tag !== "Conditional") {
      out.push({ _tag: "Step", path, step })
      return
    }
    const choice = branches[path]
    if (choice === undefined) {
      out.push({ _tag: "Decision", path, step })
      return
    }
    const sub = choice === -1 ? step.otherwise : choice >= 0 ? step.branches[choice]?.saga : undefined
    if (sub !== undefined) out.push(...flatten(sub, branches, `${path}.`))
  })
  return out
}


const toExecution = (s: State): Execution => ({
  id: s.id,
  saga: s.saga,
  version: s.version,
  status: s.status,
  phase: s.phase,
  context: s.context,
  steps: s.history,
  participants: s.participants,
  error: s.error,
  createdAt: s.createdAt,
  updatedAt: s.updatedAt
})

const deadlineOf = (s: State): number | null => {
  const ds = [s.paused?.deadline, s.deadline].filter((d): d is number => typeof d === "number")
  return s.status === "paused" && ds.length > 0 ? Math.min(...ds) : null
}

// ---------------------------------------------------------------------------------------------

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("SagaManager.make")(function*(definitions: ReadonlyArray<Definition.Any>, options: ManagerOptions) {
  const store = yield* SagaStore
  const broker = yield* Broker
  const replies = yield* Replies
  const transactions = yield* Transactions
  const context = yield* Effect.context<never>()
  // executions run as fibers of the manager's scope: they stop with the service, never outlive it
  const scope = yield* Effect.scope
  const service = options.service
  const replyTo = replyTopic(service)
  const stepTimeout = Duration.toMillis(Duration.fromInputUnsafe(options.stepTimeout ?? "60 seconds"))
  const maxAttempts = options.maxAttempts ?? 10
  const registry = new Map<string, Definition.Any>()
  for (const d of definitions) registry.set(`${d.name}@${d.version}`, d)
  const waiters = new Map<string, Array<Deferred.Deferred<Execution>>>()
  const locks = new Map<string, Semaphore.Semaphore>()

  const lockOf = (id: string) => {
    let l = locks.get(id)
    if (l === undefined) locks.set(id, (l = Semaphore.makeUnsafe(1)))
    return l
  }

  const storeFailure = (e: SagaStoreError) => new SagaError({ reason: "Unavailable", message: e.message, cause: e })

  const record = (s: State): Omit<ExecutionRecord, "revision"> => ({
    id: s.id,
    saga: s.saga,
    version: s.version,
    status: s.status,
    deadline: deadlineOf(s),
    data: JSON.parse(JSON.stringify(s)),
    createdAt: s.createdAt,
    updatedAt: s.updatedAt
  })

  const notify = (s: State) =>
    Effect.gen(function*() {
      if (s.status !== "finished" && s.status !== "errored") return
      const ws = waiters.get(s.id) ?? []
      waiters.delete(s.id)
      for (const w of ws) yield* Deferred.succeed(w, toExecution(s))
    })

  const now = Clock.currentTimeMillis

  /** Persists `s` over revision `rev`; returns the new revision. */
  const save = (s: State, rev: number) =>
    Effect.gen(function*() {
      s.updatedAt = yield* now
      const r = yield* store.put(record(s), rev).pipe(Effect.mapError(storeFailure))
      yield* notify(s)
      return r.revision
    })

  const publish = (s: State, pause: Pause) =>
    broker.publish([{
      topic: pause.topic,
      key: s.id,
      value: Message.encode(Message.make({ topic: pause.topic, identifier: pause.requestId, content: pause.content, replyTopic: replyTo, headers: pause.headers })),
      headers: { "message-id": pause.requestId, saga: s.id }
    }]).pipe(Effect.catch((e) => Effect.logWarning(`saga ${s.id}: could not send ${pause.topic} now (${e.message}); it is re-sent on its timeout`)))

  const pauseWith = (s: State, purpose: Purpose, target: string, topic: string, content: unknown, headers: Record<string, string>, timeoutMs: number, attempt: number) =>
    Effect.gen(function*() {
      const t = yield* now
      s.paused = {
        purpose,
        target,
        topic,
        content,
        headers: { saga: s.id, ...(s.user ? { user: s.user } : {}), ...headers },
        requestId: stableUuid(`${s.id}:${purpose}:${target}:${attempt}`),
        deadline: t + timeoutMs,
        attempt
      }
      s.status = "paused"
    })

  // ------------------------------------------------------------------------------------------
  // driving an execution until it pauses or ends; every boundary is saved

  const definitionOf = (s: State) => registry.get(`${s.saga}@${s.version}`)

  const fail = (s: State, message: string) =>
    Effect.sync(() => {
      s.error = s.error ?? message
      s.phase = "compensating"
      s.toCompensate = s.history.map((h, i) => [h, i] as const).filter(([h]) => h.compensable).map(([, i]) => i).reverse()
    })

  /** One move; returns false when the execution paused or ended. */
  const stepOnce = (s: State, def: Definition.Any): Effect.Effect<boolean> =>
    Effect.gen(function*() {
      const decode = Schema.decodeUnknownSync(def.context)
      const encode = Schema.encodeSync(def.context)
      const t = yield* now
      if (s.deadline !== null && t > s.deadline && s.phase === "executing") {
        yield* fail(s, `the saga timed out`)
        return true
      }
      switch (s.phase) {
        case "executing": {
          const flat = flatten(def.steps, s.branches)
          const next = flat[s.cursor]
          if (next === undefined) {
            // two-phase commit: the local participant reserves first, so a collision here aborts
            // before anyone else is asked
            const local = yield* transactions.reserve(s.transaction).pipe(Effect.exit)
            if (Exit.isFailure(local)) {
              yield* fail(s, `reserving the local transaction failed: ${describeCause(local.cause)}`)
              return true
            }
            s.phase = "reserving"
            s.pending = [...s.participants]
            return true
          }
          if (next._tag === "Decision") {
            const ctx = decode(s.context)
            const i = next.step.branches.findIndex((b: { when: (c: unknown) => boolean }) => b.when(ctx))
            s.branches[next.path] = i >= 0 ? i : next.step.otherwise !== undefined ? -1 : -2
            return true
          }
          const step = next.step
          const entry: StepRecord = { path: next.path, name: step.name, kind: step._tag === "Remote" ? "remote" : "local", status: "running", startedAt: t, finishedAt: null, error: null, compensable: false }
          s.history.push(entry)
          if (step._tag === "Local") {
            const ctx = decode(s.context)
            const exit = yield* step.execute(ctx).pipe(
              Effect.provideService(CurrentTransaction, s.transaction),
              Effect.provideContext(context as Context.Context<any>),
              Effect.exit
            )
            entry.finishedAt = yield* now
            entry.compensable = true
            if (Exit.isSuccess(exit)) {
              s.context = encode(exit.value)
              entry.status = "finished"
              s.cursor++
            } else {
              entry.status = "errored"
              entry.error = describeCause(exit.cause)
              // its own writes are in the transaction, which the abort rejects; no self-compensation
              entry.compensable = false
              yield* fail(s, `step ${step.name} failed: ${entry.error}`)
            }
            return true
          }
          const request = step.execute(decode(s.context))
          entry.status = "paused"
          entry.compensable = true
          yield* pauseWith(s, "execute", String(s.history.length - 1), request.topic, request.content, { ...request.headers, [TRANSACTIONS_HEADER]: s.transaction }, step.timeout ? Duration.toMillis(step.timeout) : stepTimeout, 1)
          return false
        }
        case "compensating": {
          const index = s.toCompensate[0]
          if (index === undefined) {
            s.phase = "rejecting"
            s.pending = [...s.participants]
            yield* transactions.reject(s.transaction).pipe(Effect.ignore)
            return true
          }
          const entry = s.history[index]!
          const step = flatten(def.steps, s.branches).find((f) => f._tag === "Step" && f.path === entry.path)?.step as Step<any, any> | undefined
          const compensate = step !== undefined && step._tag !== "Conditional" ? step.compensate : undefined
          if (compensate === undefined) {
            s.toCompensate.shift()
            return true
          }
          entry.status = "compensating"
          if (step!._tag === "Local") {
            const exit = yield* (compensate as (c: unknown) => Effect.Effect<void, unknown, any>)(decode(s.context)).pipe(
              Effect.provideContext(context as Context.Context<any>),
              Effect.exit
            )
            entry.status = Exit.isSuccess(exit) ? "compensated" : "compensation-failed"
            if (Exit.isFailure(exit)) s.error = `${s.error ?? ""}; compensation of ${entry.name} failed: ${describeCause(exit.cause)}`
            s.toCompensate.shift()
            return true
          }
          const request = (compensate as (c: unknown) => { topic: string; content: unknown; headers?: Record<string, string> })(decode(s.context))
          yield* pauseWith(s, "compensate", String(index), request.topic, request.content, { ...request.headers }, stepTimeout, 1)
          return false
        }
        case "reserving": {
          const participant = s.pending[0]
          if (participant === undefined) {
            // everyone reserved: commit here first, then the others (in the same order)
            const local = yield* transactions.commit(s.transaction).pipe(Effect.exit)
            if (Exit.isFailure(local)) {
              yield* fail(s, `committing the local transaction failed: ${describeCause(local.cause)}`)
              return true
            }
            s.phase = "committing"
            s.pending = [...s.participants]
            return true
          }
          yield* pauseWith(s, "reserve", participant, reserveTopic(participant), { uuid: s.transaction }, {}, stepTimeout, 1)
          return false
        }
        case "committing":
        case "rejecting": {
          const participant = s.pending[0]
          if (participant === undefined) {
            s.status = s.phase === "committing" ? "finished" : "errored"
            s.phase = "done"
            s.paused = null
            return false
          }
          const committing = s.phase === "committing"
          yield* pauseWith(s, committing ? "commit" : "reject", participant, committing ? commitTopic(participant) : rejectTopic(participant), { uuid: s.transaction }, {}, stepTimeout, 1)
          return false
        }
        case "done":
          return false
      }
    })

  /** Runs until the execution pauses or ends, saving at every boundary; sends what a pause needs. */
  const drive = (s: State, rev: number) =>
    Effect.gen(function*() {
      const def = definitionOf(s)
      if (def === undefined) {
        s.error = `Saga ${s.saga} version ${s.version} is not registered any more; the execution cannot go on`
        s.status = "errored"
        s.phase = "done"
        s.paused = null
        return yield* save(s, rev)
      }
      let revision = rev
      for (;;) {
        if (s.status !== "paused") s.status = "running"
        const goOn = yield* stepOnce(s, def)
        revision = yield* save(s, revision)
        if (!goOn) {
          if (s.paused !== null) yield* publish(s, s.paused)
          return revision
        }
      }
    })

  const load = (id: string) =>
    store.get(id).pipe(
      Effect.mapError(storeFailure),
      Effect.flatMap(Option.match({
        onNone: () => Effect.fail(new SagaError({ reason: "NotFound", execution: id, message: `No saga execution ${id}` })),
        onSome: (r) => Effect.succeed({ state: r.data as State, revision: r.revision })
      }))
    )

  /** Applies a reply or a timeout to the paused request `requestId`. */
  const resume = (id: string, requestId: string, outcome: { readonly status: number; readonly content: unknown; readonly headers: Readonly<Record<string, string>> } | "timeout") =>
    lockOf(id).withPermits(1)(Effect.gen(function*() {
      const { revision, state: s } = yield* load(id)
      const pause = s.paused
      // late, duplicate, or for another attempt: ignore
      if (s.status !== "paused" || pause === null || pause.requestId !== requestId) return
      const def = definitionOf(s)
      if (def === undefined) return yield* drive(s, revision)
      const t = yield* now
      const retry = (reason: string) =>
        Effect.gen(function*() {
          if (pause.attempt >= maxAttempts) {
            s.error = `${s.error ? `${s.error}; ` : ""}${pause.topic} not acknowledged after ${pause.attempt} attempts (${reason})`
            s.status = "errored"
            s.phase = "done"
            s.paused = null
            if (pause.purpose === "compensate") s.history[Number(pause.target)]!.status = "compensation-failed"
            yield* save(s, revision)
            return
          }
          yield* pauseWith(s, pause.purpose, pause.target, pause.topic, pause.content, { ...pause.headers }, stepTimeout, pause.attempt + 1)
          yield* save(s, revision)
          yield* publish(s, s.paused!)
        })
      s.paused = null
      s.status = "running"
      switch (pause.purpose) {
        case "execute": {
          const entry = s.history[Number(pause.target)]!
          const step = flatten(def.steps, s.branches).find((f) => f._tag === "Step" && f.path === entry.path)?.step as Step<any, any>
          const remote = step._tag === "Remote" ? step : undefined
          entry.finishedAt = t
          if (outcome !== "timeout") {
            for (const p of (outcome.headers[RELATED_SERVICES_HEADER] ?? "").split(",").map((x) => x.trim()).filter(Boolean)) {
              if (p !== service && !s.participants.includes(p)) s.participants.push(p)
            }
          }
          const hook = outcome === "timeout" ? undefined : outcome.status === 200 ? remote?.onSuccess ?? ((c: unknown) => Effect.succeed(c)) : outcome.status === 400 ? remote?.onError : undefined
          if (hook === undefined) {
            entry.status = "errored"
            entry.error = outcome === "timeout" ? `no reply to ${pause.topic} in time` : `${pause.topic} replied ${outcome.status}: ${JSON.stringify(outcome.content).slice(0, 500)}`
            yield* fail(s, `step ${entry.name} failed: ${entry.error}`)
          } else {
            const decode = Schema.decodeUnknownSync(def.context)
            const exit = yield* hook(decode(s.context), outcome === "timeout" ? undefined : outcome.content).pipe(
              Effect.provideService(CurrentTransaction, s.transaction),
              Effect.provideContext(context as Context.Context<any>),
              Effect.exit
            )
            if (Exit.isSuccess(exit)) {
              s.context = Schema.encodeSync(def.context)(exit.value)
              entry.status = "finished"
              s.cursor++
            } else {
              entry.status = "errored"
              entry.error = describeCause(exit.cause)
              yield* fail(s, `step ${entry.name} failed: ${entry.error}`)
            }
          }
          return yield* drive(s, revision)
        }
        case "compensate": {
          if (outcome !== "timeout" && outcome.status === 200) {
            s.history[Number(pause.target)]!.status = "compensated"
            s.toCompensate.shift()
            return yield* drive(s, revision)
          }
          return yield* retry(outcome === "timeout" ? "no reply" : `status ${outcome.status}`)
        }
        case "commit":
        case "reserve":
        case "reject": {
          if (outcome !== "timeout" && outcome.status === 200) {
            s.pending.shift()
            return yield* drive(s, revision)
          }
          if (pause.purpose === "reserve" && outcome !== "timeout" && outcome.status === 400) {
            yield* fail(s, `${pause.target} could not reserve the transaction: ${JSON.stringify(outcome.content).slice(0, 300)}`)
            return yield* drive(s, revision)
          }
          return yield* retry(outcome === "timeout" ? "no reply" : `status ${outcome.status}`)
        }
      }
    }))

  const start = Effect.fn("SagaManager.start")(function*<C, R>(definition: Definition<C, R>, input: C, startOptions?: { readonly id?: string; readonly user?: string }) {
    if (!registry.has(`${definition.name}@${definition.version}`)) {
      return yield* Effect.fail(new SagaError({ reason: "UnknownDefinition", message: `Saga ${definition.name} v${definition.version} is not registered with the manager` }))
    }
    const encoded = yield* Schema.encodeEffect(definition.context)(input).pipe(
      Effect.mapError((e) => new SagaError({ reason: "InvalidContext", message: e.message }))
    )
    const id = startOptions?.id ?? crypto.randomUUID()
    const t = yield* now
    const s: State = {
      id,
      saga: definition.name,
      version: definition.version,
      status: "created",
      context: encoded,
      transaction: id,
      branches: {},
      cursor: 0,
      history: [],
      phase: "executing",
      paused: null,
      participants: [],
      pending: [],
      toCompensate: [],
      error: null,
      deadline: definition.timeout === undefined ? null : t + Duration.toMillis(definition.timeout),
      user: startOptions?.user ?? null,
      createdAt: t,
      updatedAt: t
    }
    yield* transactions.begin({ id }).pipe(Effect.mapError((e) => new SagaError({ reason: "Unavailable", execution: id, message: e.message, cause: e })))
    const created = yield* store.create(record(s)).pipe(Effect.mapError(storeFailure))
    yield* lockOf(id).withPermits(1)(drive(s, created.revision)).pipe(
      Effect.catchCause((cause) => Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.logError(`saga ${id} stopped on an error; it resumes on its timeout`, cause)),
      Effect.forkIn(scope)
    )
    return id
  })

  const get = Effect.fn("SagaManager.get")(function*(id: string) {
    return toExecution((yield* load(id)).state)
  })

  const list = Effect.fn("SagaManager.list")(function*(listOptions?: { readonly status?: ExecutionStatus | undefined; readonly saga?: string | undefined; readonly limit?: number | undefined }) {
    const records = yield* store.list(listOptions).pipe(Effect.mapError(storeFailure))
    return records.map((r) => toExecution(r.data as State))
  })

  const awaitDone = Effect.fn("SagaManager.await")(function*(id: string, timeout: Duration.Input = "60 seconds") {
    const d = yield* Deferred.make<Execution>()
    waiters.set(id, [...(waiters.get(id) ?? []), d])
    const current = yield* get(id)
    if (current.status === "finished" || current.status === "errored") return current
    return yield* Deferred.await(d).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(new SagaError({ reason: "Timeout", execution: id, message: `Saga ${id} did not end in time` }))
      })
    )
  })

  const run = Effect.fn("SagaManager.run")(function*<C, R>(definition: Definition<C, R>, input: C, runOptions?: { readonly timeout?: Duration.Input; readonly id?: string; readonly user?: string }) {
    const id = yield* start(definition, input, runOptions)
    const done = yield* awaitDone(id, runOptions?.timeout)
    if (done.status === "errored") return yield* Effect.fail(new SagaError({ reason: "Failed", execution: id, message: done.error ?? "the saga failed" }))
    return done
  })

  // replies: only those naming one of our executions in their `saga` header
  yield* replies.listen((reply) => {
    const id = reply.payload.headers["saga"]
    if (id === undefined) return Effect.void
    return resume(id, reply.identifier, { status: Message.normalizeStatus(reply.payload.status), content: reply.payload.content, headers: reply.payload.headers }).pipe(
      Effect.catchTag("SagaError", (e) => (e.reason === "NotFound" ? Effect.void : Effect.fail(e)))
    )
  })

  // timeouts, and pauses whose command may not have gone out before a crash
  const tick = Duration.fromInputUnsafe(options.tickInterval ?? "1 second")
  const lease = Duration.toMillis(Duration.fromInputUnsafe(options.runningLease ?? "30 seconds"))
  /** Takes over an execution whose process stopped in the middle of a step. */
  const recover = (id: string) =>
    lockOf(id).withPermits(1)(Effect.gen(function*() {
      const { revision, state: s } = yield* load(id)
      if ((s.status !== "running" && s.status !== "created") || s.updatedAt > (yield* now) - lease) return
      const current = s.history[s.history.length - 1]
      if (s.phase === "executing" && current !== undefined && current.status === "running") {
        current.status = "errored"
        current.error = "interrupted: the service stopped during this step"
        current.finishedAt = yield* now
        yield* fail(s, `step ${current.name} was interrupted`)
      }
      yield* Effect.logWarning(`saga ${id}: taking over an execution interrupted in phase ${s.phase}`)
      yield* drive(s, revision)
    }))
  const sweep = Effect.gen(function*() {
    const t = yield* now
    const due = yield* store.due(t).pipe(Effect.mapError(storeFailure))
    for (const r of due) {
      const s = r.data as State
      if (s.paused !== null) yield* resume(s.id, s.paused.requestId, "timeout").pipe(Effect.catchCause((c) => Effect.logWarning(`saga ${s.id}: timeout handling failed`, c)))
    }
    for (const status of ["created", "running"] as const) {
      const stale = (yield* store.list({ status }).pipe(Effect.mapError(storeFailure))).filter((r) => r.updatedAt <= t - lease)
      for (const r of stale) yield* recover(r.id).pipe(Effect.catchCause((c) => Effect.logWarning(`saga ${r.id}: take-over failed`, c)))
    }
  })
  yield* Effect.gen(function*() {
    // after a restart, re-send what paused executions wait for (the receivers deduplicate)
    const paused = yield* store.list({ status: "paused" }).pipe(Effect.orElseSucceed(() => []))
    for (const r of paused) {
      const s = r.data as State
      if (s.paused !== null) yield* publish(s, s.paused)
    }
    for (;;) {
      // a due timeout is acted on within one tick of its deadline
      yield* Effect.sleep(tick)
      yield* sweep.pipe(Effect.catchCause((c) => Effect.logWarning("saga manager: timeout sweep failed", c)))
    }
  }).pipe(Effect.forkScoped)

  return SagaManager.of({ start, run, get, list, await: awaitDone })
})
