/**
 * Given/when/then for aggregates, usable from any test runner (failures throw `AssertionError`).
 *
 * ```ts
 * const spec = AggregateSpec.of(Exam)
 * spec.given([created]).when(Entity.update({ title: "B" })).then([{ _tag: "ExamUpdated", diff: [...] }])
 * spec.given([]).when(Entity.update({})).thenFails((e) => e._tag === "NotFound")
 * spec.given([created]).when(Entity.update({ title: "A" })).thenNothingHappened()
 * ```
 *
 * Events are compared in their encoded (stored) form.
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"
import { AssertionError, deepStrictEqual } from "node:assert"
import * as Aggregate from "../domain/Aggregate.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface Then<State, Event, Err> {
  /** The command produced exactly these events (in order). */
  readonly then: (expected: ReadonlyArray<Event>) => State
  /** The command failed; `check` is a predicate, an error `_tag`, or an error class. */
  readonly thenFails: (check: string | ((error: Err) => boolean) | (abstract new(...args: Array<any>) => unknown)) => Err
  /** The command succeeded without producing any event. */
  readonly thenNothingHappened: () => State
}

/**
 * @category models
 * @since 0.1.0
 */
export interface Spec<State, Command, Event, Err> {
  readonly given: (events: ReadonlyArray<Event>) => { readonly when: (command: Command) => Then<State, Event, Err> }
}

/**
 * @category constructors
 * @since 0.1.0
 */
export const of = <State, Command, Event extends Aggregate.EventLike, Err>(
  aggregate: Aggregate.Aggregate<State, Command, Event, Err>
): Spec<State, Command, Event, Err> => {
  const encode = Schema.encodeSync(aggregate.events)
  return {
    given: (history) => ({
      when: (command) => {
        const state = Aggregate.replay(aggregate, history)
        const result = aggregate.decide(command, state)
        const succeeded = (): ReadonlyArray<Event> => {
          if (Result.isFailure(result)) {
            throw new AssertionError({ message: `Expected the command to succeed, it failed with ${String((result.failure as { _tag?: string })?._tag ?? result.failure)}: ${String((result.failure as Error)?.message ?? "")}` })
          }
          return result.success
        }
        return {
          then: (expected) => {
            const events = succeeded()
            deepStrictEqual(events.map((e) => encode(e)), expected.map((e) => encode(e)), "events differ")
            return Aggregate.replay(aggregate, events, state)
          },
          thenNothingHappened: () => {
            const events = succeeded()
            if (events.length > 0) {
              throw new AssertionError({ message: `Expected no events, got ${events.map((e) => e._tag).join(", ")}` })
            }
            return state
          },
          thenFails: (check) => {
            if (Result.isSuccess(result)) {
              throw new AssertionError({ message: `Expected the command to fail, it produced ${result.success.map((e) => e._tag).join(", ") || "no events"}` })
            }
            const error = result.failure
            const ok = typeof check === "string"
              ? (error as { _tag?: string })?._tag === check
              : check.prototype !== undefined && check.prototype.constructor === check && /^class\s/.test(Function.prototype.toString.call(check))
              ? error instanceof (check as abstract new(...args: Array<any>) => unknown)
              : (check as (e: Err) => boolean)(error)
            if (!ok) {
              throw new AssertionError({ message: `The command failed, but not as expected: ${String((error as { _tag?: string })?._tag)}: ${String((error as Error)?.message ?? "")}` })
            }
            return error
          }
        }
      }
    })
  }
}
