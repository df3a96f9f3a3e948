/**
 * A saga execution as an aggregate of this framework: its state is a Schema, its history a stream
 * of saga events in the service's own event store, and every change is a command decided against
 * the current state and appended at the expected version — so two replicas acting on one execution
 * (a reply landing on one, a timeout sweep on the other) cannot both move it: the second append
 * conflicts and is decided again on fresh state.
 *
 * Commands from outside are {@link Command}: `Start`, `Reply`, `Timeout`, `Cancel`, `Retry`,
 * `Resume`, and `Progress` (the events the saga manager's driver produced by running the next
 * steps; decide checks that the execution can still move). `evolve` is the only place state changes.
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"
import * as Aggregate from "../domain/Aggregate.ts"

/**
 * `running`: moving (or ready to move) · `paused`: waiting for a reply or a timeout · `finished`:
 * committed everywhere · `compensated`: failed, its steps compensated and its transaction rejected
 * everywhere · `errored`: failed and something could not be undone or acknowledged (see `problems`).
 *
 * @category models
 * @since 0.1.0
 */
export const Status = Schema.Literals(["running", "paused", "finished", "compensated", "errored"])
export type Status = typeof Status.Type

/** @category models @since 0.1.0 */
export const Phase = Schema.Literals(["executing", "compensating", "reserving", "committing", "rejecting", "done"])
export type Phase = typeof Phase.Type

/** @category models @since 0.1.0 */
export const Purpose = Schema.Literals(["execute", "compensate", "reserve", "commit", "reject"])
export type Purpose = typeof Purpose.Type

/** @category models @since 0.1.0 */
export const StepStatus = Schema.Literals(["running", "paused", "finished", "errored", "compensating", "compensated", "compensation-failed"])
export type StepStatus = typeof StepStatus.Type

/**
 * Why an execution failed: a step failed, a timeout (step or saga), it lost a race for an aggregate
 * more often than its contention budget allows, an operator cancelled it, a participant refused to
 * reserve, or its definition is not registered any more.
 *
 * @category models
 * @since 0.1.0
 */
export const FailureReason = Schema.Literals(["StepFailed", "Timeout", "Contention", "Cancelled", "Rejected", "DefinitionMissing"])
export type FailureReason = typeof FailureReason.Type

const Json = Schema.Unknown
const Time = Schema.Number

/** @category models @since 0.1.0 */
export const StepRecord = Schema.Struct({
  path: Schema.String,
  name: Schema.String,
  kind: Schema.Literals(["remote", "local"]),
  status: StepStatus,
  startedAt: Time,
  finishedAt: Schema.NullOr(Time),
  error: Schema.NullOr(Schema.String),
  /** The step reached the point where it needs compensating (remote: the command was sent). */
  compensable: Schema.Boolean,
  attempts: Schema.Int
})
export type StepRecord = typeof StepRecord.Type

/** @category models @since 0.1.0 */
export const Pause = Schema.Struct({
  purpose: Purpose,
  /** Step path (execute), history index (compensate) or participant (reserve/commit/reject). */
  target: Schema.String,
  topic: Schema.String,
  requestId: Schema.String,
  content: Json,
  headers: Schema.Record(Schema.String, Schema.String),
  deadline: Time,
  attempt: Schema.Int,
  sentAt: Time
})
export type Pause = typeof Pause.Type

/** @category models @since 0.1.0 */
export const Failure = Schema.Struct({ reason: FailureReason, step: Schema.NullOr(Schema.String), message: Schema.String })
export type Failure = typeof Failure.Type

/**
 * @category models
 * @since 0.1.0
 */
export const State = Schema.Struct({
  id: Schema.String,
  saga: Schema.String,
  version: Schema.Int,
  status: Status,
  phase: Phase,
  /** The context, encoded with the definition's Schema. */
  context: Json,
  initial: Json,
  /** The minos transaction of the current run. */
  transaction: Schema.String,
  /** Runs so far (a run rolled back for contention starts the next on fresh state). */
  run: Schema.Int,
  /** Contention retries used (steps sent again and runs started again). */
  retries: Schema.Int,
  branches: Schema.Record(Schema.String, Schema.Int),
  cursor: Schema.Int,
  steps: Schema.Array(StepRecord),
  pause: Schema.NullOr(Pause),
  participants: Schema.Array(Schema.String),
  /** Participants still to reserve/commit/reject in this phase, in order. */
  pending: Schema.Array(Schema.String),
  /** Whether the local transaction already did this phase's move. */
  localDone: Schema.Boolean,
  /** Step indexes still to compensate, in order. */
  toCompensate: Schema.Array(Schema.Int),
  failure: Schema.NullOr(Failure),
  /** What could not be undone or acknowledged. */
  problems: Schema.Array(Schema.String),
  deadline: Schema.NullOr(Time),
  /** When a sweep acts on it: the pause's deadline, the end of a back-off, or a take-over lease. */
  wakeAt: Schema.NullOr(Time),
  /** A step that lost a race is sent again at this time. */
  retryAt: Schema.NullOr(Time),
  user: Schema.NullOr(Schema.String),
  createdAt: Time,
  updatedAt: Time,
  endedAt: Schema.NullOr(Time)
})
export type State = typeof State.Type

// ---------------------------------------------------------------------------------------------
// events

const at = { at: Time }

/** @category events @since 0.1.0 */
export const SagaStarted = Schema.TaggedStruct("SagaStarted", {
  id: Schema.String,
  saga: Schema.String,
  version: Schema.Int,
  context: Json,
  transaction: Schema.String,
  deadline: Schema.NullOr(Time),
  user: Schema.NullOr(Schema.String),
  ...at
})
/** @category events @since 0.1.0 */
export const BranchChosen = Schema.TaggedStruct("BranchChosen", { path: Schema.String, branch: Schema.Int, ...at })
/** @category events @since 0.1.0 */
export const StepStarted = Schema.TaggedStruct("StepStarted", { path: Schema.String, name: Schema.String, kind: Schema.Literals(["remote", "local"]), ...at })
/** @category events @since 0.1.0 */
export const StepFinished = Schema.TaggedStruct("StepFinished", { path: Schema.String, context: Json, participants: Schema.Array(Schema.String), ...at })
/** Moves the execution into compensation (from executing or reserving). */
export const Failed = Schema.TaggedStruct("Failed", { reason: FailureReason, step: Schema.NullOr(Schema.String), message: Schema.String, ...at })
/** @category events @since 0.1.0 */
export const CommandSent = Schema.TaggedStruct("CommandSent", {
  purpose: Purpose,
  target: Schema.String,
  topic: Schema.String,
  requestId: Schema.String,
  content: Json,
  headers: Schema.Record(Schema.String, Schema.String),
  deadline: Time,
  attempt: Schema.Int,
  ...at
})
/** @category events @since 0.1.0 */
export const ReplyReceived = Schema.TaggedStruct("ReplyReceived", { requestId: Schema.String, status: Schema.Int, participants: Schema.Array(Schema.String), ...at })
/** @category events @since 0.1.0 */
export const TimedOut = Schema.TaggedStruct("TimedOut", { requestId: Schema.String, ...at })
/** A contention retry: the step is sent again (or the run starts again) at `until`. */
export const BackedOff = Schema.TaggedStruct("BackedOff", { until: Time, message: Schema.String, ...at })
/** @category events @since 0.1.0 */
export const Acknowledged = Schema.TaggedStruct("Acknowledged", { purpose: Purpose, target: Schema.String, ...at })
/** A compensation or acknowledgement given up on (it is in `problems`). */
export const GaveUp = Schema.TaggedStruct("GaveUp", { purpose: Purpose, target: Schema.String, message: Schema.String, ...at })
/** @category events @since 0.1.0 */
export const PhaseEntered = Schema.TaggedStruct("PhaseEntered", { phase: Phase, pending: Schema.Array(Schema.String), ...at })
/** @category events @since 0.1.0 */
export const LocalTransactionMoved = Schema.TaggedStruct("LocalTransactionMoved", { to: Schema.Literals(["reserved", "committed", "rejected"]), ...at })
/** A run rolled back for contention; the next starts from the first step in `transaction`. */
export const RunRestarted = Schema.TaggedStruct("RunRestarted", { transaction: Schema.String, until: Time, ...at })
/** The driver holds it until `wakeAt` (a take-over lease when it stops half-way). */
export const Leased = Schema.TaggedStruct("Leased", { wakeAt: Time, ...at })
/** An operator re-opened the given-up acknowledgements of an errored execution. */
export const Reopened = Schema.TaggedStruct("Reopened", { phase: Phase, pending: Schema.Array(Schema.String), toCompensate: Schema.Array(Schema.Int), ...at })
/** @category events @since 0.1.0 */
export const Ended = Schema.TaggedStruct("Ended", { status: Schema.Literals(["finished", "compensated", "errored"]), ...at })

/** @category events @since 0.1.0 */
export const Event = Schema.Union([
  SagaStarted,
  BranchChosen,
  StepStarted,
  StepFinished,
  Failed,
  CommandSent,
  ReplyReceived,
  TimedOut,
  BackedOff,
  Acknowledged,
  GaveUp,
  PhaseEntered,
  LocalTransactionMoved,
  RunRestarted,
  Leased,
  Reopened,
  Ended
])
export type Event = typeof Event.Type

// ---------------------------------------------------------------------------------------------
// commands and errors

/**
 * @category models
 * @since 0.1.0
 */
export type Command =
  | { readonly _tag: "Start"; readonly event: typeof SagaStarted.Type }
  | { readonly _tag: "Reply"; readonly requestId: string; readonly status: number; readonly participants: ReadonlyArray<string>; readonly at: number }
  | { readonly _tag: "Timeout"; readonly requestId: string; readonly at: number }
  | { readonly _tag: "Cancel"; readonly by: string | null; readonly at: number }
  | { readonly _tag: "Retry"; readonly at: number }
  | { readonly _tag: "Progress"; readonly events: ReadonlyArray<Event> }

/**
 * A command the execution's state refuses (it exists, it ended, nothing to retry…).
 *
 * @category errors
 * @since 0.1.0
 */
export class ExecutionRefused extends Schema.TaggedError<ExecutionRefused>()("ExecutionRefused", {
  execution: Schema.String,
  message: Schema.String
}) {}

export const isFinal = (s: State): boolean => s.status === "finished" || s.status === "compensated" || s.status === "errored"

const EMPTY: State = {
  id: "",
  saga: "",
  version: 0,
  status: "running",
  phase: "executing",
  context: null,
  initial: null,
  transaction: "",
  run: 0,
  retries: 0,
  branches: {},
  cursor: 0,
  steps: [],
  pause: null,
  participants: [],
  pending: [],
  localDone: false,
  toCompensate: [],
  failure: null,
  problems: [],
  deadline: null,
  wakeAt: null,
  retryAt: null,
  user: null,
  createdAt: 0,
  updatedAt: 0,
  endedAt: null
}

const withStep = (s: State, index: number, f: (r: StepRecord) => StepRecord): State => ({
  ...s,
  steps: s.steps.map((r, i) => (i === index ? f(r) : r))
})

const stepIndex = (s: State, path: string): number => {
  for (let i = s.steps.length - 1; i >= 0; i--) if (s.steps[i]!.path === path) return i
  return -1
}

const addParticipants = (s: State, ps: ReadonlyArray<string>): ReadonlyArray<string> => {
  const out = [...s.participants]
  for (const p of ps) if (!out.includes(p)) out.push(p)
  return out
}

/**
 * The state after one more event.
 *
 * @since 0.1.0
 */
export const evolve = (s: State, e: Event): State => {
  const t = { ...s, updatedAt: e.at }
  switch (e._tag) {
    case "SagaStarted":
      return {
        ...EMPTY,
        id: e.id,
        saga: e.saga,
        version: e.version,
        context: e.context,
        initial: e.context,
        transaction: e.transaction,
        run: 1,
        deadline: e.deadline,
        user: e.user,
        createdAt: e.at,
        updatedAt: e.at
      }
    case "BranchChosen":
      return { ...t, branches: { ...s.branches, [e.path]: e.branch } }
    case "StepStarted": {
      const i = stepIndex(s, e.path)
      // a step sent again after a contention back-off keeps its record
      if (i >= 0 && s.steps[i]!.status !== "finished") return { ...withStep(t, i, (r) => ({ ...r, status: "running", attempts: r.attempts + 1, error: null })), retryAt: null }
      return { ...t, status: "running", retryAt: null, steps: [...s.steps, { path: e.path, name: e.name, kind: e.kind, status: "running", startedAt: e.at, finishedAt: null, error: null, compensable: false, attempts: 1 }] }
    }
    case "StepFinished": {
      const i = stepIndex(s, e.path)
      const u = withStep(t, i, (r) => ({ ...r, status: "finished", finishedAt: e.at, compensable: true }))
      return { ...u, context: e.context, cursor: s.cursor + 1, participants: addParticipants(s, e.participants) }
    }
    case "Failed": {
      const current = s.steps[s.steps.length - 1]
      const u = current !== undefined && (current.status === "running" || current.status === "paused") && s.phase === "executing"
        ? withStep(t, s.steps.length - 1, (r) => ({ ...r, status: "errored", finishedAt: e.at, error: e.message }))
        : t
      const toCompensate = u.steps.map((r, i) => [r, i] as const).filter(([r]) => r.compensable).map(([, i]) => i).reverse()
      return { ...u, status: "running", phase: "compensating", pause: null, wakeAt: null, failure: s.failure ?? { reason: e.reason, step: e.step, message: e.message }, toCompensate, pending: [], localDone: false }
    }
    case "CommandSent": {
      const pause: Pause = {
        purpose: e.purpose,
        target: e.target,
        topic: e.topic,
        requestId: e.requestId,
        content: e.content,
        headers: e.headers,
        deadline: e.deadline,
        attempt: e.attempt,
        sentAt: e.at
      }
      let u: State = { ...t, status: "paused", pause, wakeAt: s.deadline !== null && s.phase === "executing" ? Math.min(e.deadline, s.deadline) : e.deadline }
      if (e.purpose === "execute") {
        const i = stepIndex(u, e.target)
        u = withStep(u, i, (r) => ({ ...r, status: "paused", compensable: true }))
      } else if (e.purpose === "compensate") {
        u = withStep(u, Number(e.target), (r) => ({ ...r, status: "compensating" }))
      }
      return u
    }
    case "ReplyReceived":
      return { ...t, status: "running", pause: null, wakeAt: null, participants: addParticipants(s, e.participants) }
    case "TimedOut":
      return { ...t, status: "running", pause: null, wakeAt: null }
    case "BackedOff":
      return { ...t, status: "running", pause: null, wakeAt: e.until, retryAt: e.until, retries: s.retries + 1 }
    case "Acknowledged":
      if (e.purpose === "compensate") {
        const u = withStep(t, Number(e.target), (r) => ({ ...r, status: "compensated" }))
        return { ...u, toCompensate: s.toCompensate.filter((i) => i !== Number(e.target)) }
      }
      return { ...t, pending: s.pending.filter((p) => p !== e.target) }
    case "GaveUp": {
      const problems = [...s.problems, e.message]
      if (e.purpose === "compensate") {
        const u = withStep(t, Number(e.target), (r) => ({ ...r, status: "compensation-failed", error: e.message }))
        return { ...u, problems, toCompensate: s.toCompensate.filter((i) => i !== Number(e.target)) }
      }
      return { ...t, problems, pending: s.pending.filter((p) => p !== e.target) }
    }
    case "PhaseEntered":
      return { ...t, phase: e.phase, pending: e.pending, localDone: false, pause: null }
    case "LocalTransactionMoved":
      return { ...t, localDone: true }
    case "RunRestarted":
      return {
        ...t,
        status: "running",
        phase: "executing",
        transaction: e.transaction,
        run: s.run + 1,
        retries: s.retries + 1,
        context: s.initial,
        branches: {},
        cursor: 0,
        steps: [],
        pause: null,
        participants: [],
        pending: [],
        localDone: false,
        toCompensate: [],
        failure: null,
        problems: [],
        // a jittered back-off first, so racing runs spread out
        wakeAt: e.until,
        retryAt: e.until
      }
    case "Leased":
      return { ...t, wakeAt: e.wakeAt }
    case "Reopened":
      return { ...t, status: "running", phase: e.phase, pending: e.pending, toCompensate: e.toCompensate, localDone: false, problems: [], endedAt: null, wakeAt: null }
    case "Ended":
      return { ...t, status: e.status, phase: "done", pause: null, wakeAt: null, retryAt: null, endedAt: e.at }
  }
}

const refuse = (s: State, message: string) => Result.fail(new ExecutionRefused({ execution: s.id, message }))

/**
 * The events a command produces. Replies and timeouts that do not match the current pause (late,
 * duplicate, another attempt) produce nothing.
 *
 * @since 0.1.0
 */
export const decide = (command: Command, s: State): Result.Result<ReadonlyArray<Event>, ExecutionRefused> => {
  switch (command._tag) {
    case "Start":
      return s.id === "" ? Result.succeed([command.event]) : refuse(s, `Execution ${s.id} already exists`)
    case "Reply":
      if (s.pause === null || s.pause.requestId !== command.requestId || isFinal(s)) return Result.succeed([])
      return Result.succeed([ReplyReceived.make({ requestId: command.requestId, status: command.status, participants: [...command.participants], at: command.at })])
    case "Timeout":
      if (s.pause === null || s.pause.requestId !== command.requestId || isFinal(s)) return Result.succeed([])
      if (command.at < Math.min(s.pause.deadline, s.phase === "executing" && s.deadline !== null ? s.deadline : Infinity)) return Result.succeed([])
      return Result.succeed([TimedOut.make({ requestId: command.requestId, at: command.at })])
    case "Cancel":
      if (s.id === "") return refuse(s, "No such execution")
      if (isFinal(s)) return refuse(s, `Execution ${s.id} already ended (${s.status})`)
      if (s.phase !== "executing") return refuse(s, `Execution ${s.id} is ${s.phase}; it can no longer be cancelled`)
      return Result.succeed([
        ...(s.pause !== null ? [TimedOut.make({ requestId: s.pause.requestId, at: command.at })] : []),
        Failed.make({ reason: "Cancelled", step: null, message: `cancelled${command.by === null ? "" : ` by ${command.by}`}`, at: command.at })
      ])
    case "Retry": {
      if (s.id === "") return refuse(s, "No such execution")
      if (s.status !== "errored") return refuse(s, `Execution ${s.id} is ${s.status}; only an errored execution can be retried`)
      const failedCompensations = s.steps.map((r, i) => [r, i] as const).filter(([r]) => r.status === "compensation-failed").map(([, i]) => i).reverse()
      const phase: Phase = s.failure === null ? "committing" : failedCompensations.length > 0 ? "compensating" : "rejecting"
      return Result.succeed([Reopened.make({ phase, pending: phase === "compensating" ? [] : [...s.participants], toCompensate: failedCompensations, at: command.at })])
    }
    case "Progress":
      if (s.id === "") return refuse(s, "No such execution")
      if (isFinal(s) && !command.events.every((e) => e._tag === "Reopened")) return refuse(s, `Execution ${s.id} already ended (${s.status})`)
      return Result.succeed(command.events)
  }
}

/**
 * The aggregate (events stored in the service's event store under the name `SagaExecution`).
 *
 * @category models
 * @since 0.1.0
 */
export const SagaExecution: Aggregate.Aggregate<State, Command, Event, ExecutionRefused> = Aggregate.make({
  name: "SagaExecution",
  initialState: EMPTY,
  evolve,
  decide,
  events: Event as unknown as Schema.Codec<Event, unknown>,
  state: State as unknown as Schema.Codec<State, unknown>,
  exists: (s) => s.id !== "",
  publications: () => []
})
