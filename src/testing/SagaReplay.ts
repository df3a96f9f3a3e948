/**
 * Replays recorded saga executions against the current definitions and reports where they diverge —
 * run it in CI before deploying a changed saga: an execution started by the old code continues with
 * the new one, so every step it already took must still be the step the new code would take.
 *
 * ```ts
 * const recorded = yield* SagaReplay.record(manager, executionId)        // or read from a fixture file
 * SagaReplay.assertCompatible([ScheduleExam], [recorded])                 // throws AssertionError on divergence
 * ```
 *
 * For each recorded execution it checks that a definition of its name and version is registered,
 * that the recorded contexts still decode with the definition's Schema, that every recorded step is
 * at the same position with the same name and kind, that conditional choices come out the same on
 * the recorded context, and that every remote command the new code would send (topic and content)
 * is the one that was recorded. Local effects and hooks are not run.
 *
 * @since 0.1.0
 */
import { Effect, Exit, Schema } from "effect"
import { AssertionError } from "node:assert"
import { type Definition, flatten } from "../saga/Saga.ts"
import { Event, type State, evolve, SagaExecution } from "../saga/SagaExecution.ts"
import type { SagaError, SagaManagerShape } from "../saga/SagaManager.ts"

/**
 * An execution's history as stored (`SagaManager.history`, or `GET /sagas/:uuid/history`).
 *
 * @category models
 * @since 0.1.0
 */
export interface Recorded {
  readonly id: string
  readonly events: ReadonlyArray<{ readonly type: string; readonly data: unknown }>
}

/**
 * @category models
 * @since 0.1.0
 */
export interface Divergence {
  readonly execution: string
  readonly event: number
  readonly message: string
}

const decodeEvent = Schema.decodeUnknownSync(Event as unknown as Schema.Codec<Event, unknown>)

/**
 * Reads an execution's history from a manager.
 *
 * @since 0.1.0
 */
export const record = (manager: SagaManagerShape, id: string): Effect.Effect<Recorded, SagaError> =>
  Effect.map(manager.history(id), (events) => ({ id, events: events.map((e) => ({ type: e.type, data: e.data })) }))

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/**
 * Every divergence of the recorded executions from `definitions` (empty: compatible).
 *
 * @since 0.1.0
 */
export const divergences = (definitions: ReadonlyArray<Definition.Any>, recorded: ReadonlyArray<Recorded>): ReadonlyArray<Divergence> => {
  const out: Array<Divergence> = []
  for (const r of recorded) {
    let s: State = SagaExecution.initialState
    let def: Definition.Any | undefined
    const diverge = (event: number, message: string) => out.push({ execution: r.id, event, message })
    for (const [i, raw] of r.events.entries()) {
      let e: Event
      try {
        e = decodeEvent({ ...(raw.data as object), _tag: raw.type })
      } catch (cause) {
        diverge(i, `event ${raw.type} does not decode: ${String(cause)}`)
        break
      }
      if (e._tag === "SagaStarted") {
        def = definitions.find((d) => d.name === e.saga && d.version === e.version)
        if (def === undefined) {
          diverge(i, `no definition ${e.saga} v${e.version} is registered`)
          break
        }
      }
      if (def !== undefined && "context" in e && (e._tag === "SagaStarted" || e._tag === "StepFinished")) {
        if (Exit.isFailure(Schema.decodeUnknownExit(def.context)(e.context))) diverge(i, `the recorded context ${JSON.stringify(e.context).slice(0, 200)} does not decode with the current context Schema`)
      }
      if (def !== undefined && s.phase === "executing") {
        const flat = flatten(def.steps, s.branches)
        if (e._tag === "BranchChosen") {
          const next = flat[s.cursor]
          if (next?._tag !== "Decision" || next.path !== e.path) diverge(i, `step ${e.path} is no longer a conditional step`)
          else {
            const ctx = Schema.decodeUnknownSync(def.context)(s.context)
            const j = next.step.branches.findIndex((b) => b.when(ctx))
            const choice = j >= 0 ? j : next.step.otherwise !== undefined ? -1 : -2
            if (choice !== e.branch) diverge(i, `conditional ${next.step.name} now chooses branch ${choice}, it chose ${e.branch}`)
          }
        }
        if (e._tag === "StepStarted") {
          const next = flat[s.cursor]
          if (next?._tag !== "Step" || next.path !== e.path) diverge(i, `the step at ${e.path} (${e.name}) is no longer the next step`)
          else if (next.step.name !== e.name || (next.step._tag === "Remote" ? "remote" : "local") !== e.kind) {
            diverge(i, `the step at ${e.path} is now ${next.step._tag.toLowerCase()} ${next.step.name}, it was ${e.kind} ${e.name}`)
          }
        }
        if (e._tag === "CommandSent" && e.purpose === "execute") {
          const next = flat[s.cursor]
          if (next?._tag === "Step" && next.step._tag === "Remote") {
            const ctx = Schema.decodeUnknownSync(def.context)(s.context)
            const request = next.step.execute(ctx)
            if (request.topic !== e.topic) diverge(i, `step ${next.step.name} now sends ${request.topic}, it sent ${e.topic}`)
            else if (!same(request.content, e.content)) diverge(i, `step ${next.step.name} now sends ${JSON.stringify(request.content).slice(0, 200)}, it sent ${JSON.stringify(e.content).slice(0, 200)}`)
          }
        }
      }
      s = evolve(s, e)
    }
  }
  return out
}

/**
 * Throws an `AssertionError` listing the divergences, if any.
 *
 * @since 0.1.0
 */
export const assertCompatible = (definitions: ReadonlyArray<Definition.Any>, recorded: ReadonlyArray<Recorded>): void => {
  const found = divergences(definitions, recorded)
  if (found.length > 0) {
    throw new AssertionError({ message: `${found.length} divergence(s):\n${found.map((d) => `  ${d.execution} event ${d.event}: ${d.message}`).join("\n")}` })
  }
}
