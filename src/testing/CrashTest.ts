/**
 * Crash-anywhere tests for a service's own code: run a scenario (a command, a delivered message, a
 * saga) with a crash injected at each persistence boundary it crosses, restart the service on the
 * same stores and broker, and check that its effects happened exactly once.
 *
 * ```ts
 * const report = yield* CrashTest.run({
 *   infrastructure: () => Layer.mergeAll(Lmdb.layer({ path: freshFolder() }), MemoryBroker.layer()),  // kept across a restart
 *   service: Microservice.layerWith(definition).pipe(...),                          // built anew per life
 *   when: publishCreateExam(identifier),           // the client's request; run again if it was not acknowledged
 *   then: assertOneExam                            // retried until it passes or `settle` runs out
 * })
 * CrashTest.assertAllPassed(report)
 * ```
 *
 * A first run without a crash counts how often the scenario crosses each boundary; then, for each
 * boundary and each crossing, a fresh copy of the infrastructure runs the scenario until that
 * crossing, where the process "dies": the crossing's effect is cut off, and from then on every port
 * call of that life dies too, so nothing it does later (finalizers, a relay's last flush) persists.
 * The life is torn down, a new one is built on the same stores, `when` runs again if it did not
 * succeed (a client retrying), and `then` must hold.
 *
 * | boundary | where the crash hits |
 * | --- | --- |
 * | `beforeCommit` | inside a storage transaction, after its writes, before the commit (all of it is lost) |
 * | `afterCommit` | right after a commit, before the caller learns of it (nothing acknowledged) |
 * | `afterPublish` | after the broker acknowledged a publish, before the outbox rows are deleted |
 * | `beforeDelete` | in the outbox relay, after `publish` returned, before the rows' delete commits |
 * | `midHandler` | in a consumer's transaction, after the inbox claim, before the handler's writes |
 *
 * @since 0.1.0
 */
import { Cause, Context, Data, Duration, Effect, Exit, Layer, Ref, Schedule, Scope } from "effect"
import { AssertionError } from "node:assert"
import { Broker } from "../broker/Broker.ts"
import { Inbox } from "../queue/Inbox.ts"
import { Outbox } from "../queue/Outbox.ts"
import { UnitOfWork } from "../storage/UnitOfWork.ts"

/**
 * @category models
 * @since 0.1.0
 */
export type Boundary = "beforeCommit" | "afterCommit" | "afterPublish" | "beforeDelete" | "midHandler"

/**
 * Every boundary, in the order the report lists them.
 *
 * @since 0.1.0
 */
export const boundaries: ReadonlyArray<Boundary> = ["beforeCommit", "afterCommit", "afterPublish", "beforeDelete", "midHandler"]

/**
 * The defect a crash is made of; a service must never catch it (it stands for the process dying).
 *
 * @category errors
 * @since 0.1.0
 */
export class Crashed extends Data.TaggedError("Crashed")<{ readonly boundary: Boundary; readonly crossing: number }> {}

/**
 * @category models
 * @since 0.1.0
 */
export interface Options<RI, EI, RS, ES, A, EW, EC> {
  /**
   * Stores and broker, empty: called once per crash point (and once for the clean run); what it
   * builds is kept across that point's restart. Give it a fresh folder each call.
   */
  readonly infrastructure: () => Layer.Layer<RI, EI>
  /** The service (handlers, consumer, relay…), built anew for every life on the infrastructure. */
  readonly service: Layer.Layer<RS, ES, RI>
  /** The scenario: what a client does. Run again after a crash when it did not succeed. */
  readonly when: Effect.Effect<A, EW, RI | RS>
  /** The exactly-once check; fails (or throws) until the effects are all there. */
  readonly then: Effect.Effect<void, EC, RI | RS>
  /** Boundaries to crash at (default: all). */
  readonly boundaries?: ReadonlyArray<Boundary> | undefined
  /** How long `then` may take to pass after a restart (default 20 s). */
  readonly settle?: Duration.Input | undefined
  /** After `then` passed, wait this long and check again: late duplicates fail it (default 300 ms). */
  readonly quiet?: Duration.Input | undefined
  /** At most this many crossings per boundary are crashed at (default 20). */
  readonly maxCrossings?: number | undefined
}

/**
 * One crash point and how it went.
 *
 * @category models
 * @since 0.1.0
 */
export interface Outcome {
  readonly boundary: Boundary
  /** Which crossing of the boundary crashed (1 = the first). */
  readonly crossing: number
  /** The scenario's first attempt succeeded although the crash happened (it was acknowledged). */
  readonly acknowledged: boolean
  readonly passed: boolean
  readonly error?: string | undefined
}

/**
 * @category models
 * @since 0.1.0
 */
export interface Report {
  /** How often the scenario crossed each boundary without a crash. */
  readonly crossings: Readonly<Record<Boundary, number>>
  readonly outcomes: ReadonlyArray<Outcome>
}

interface Injector {
  /** Counts a crossing; dies when it is the armed one, or when the life is already dead. */
  readonly cross: (boundary: Boundary) => Effect.Effect<void>
  /** Dies when the life is dead (every port call checks). */
  readonly alive: Effect.Effect<void>
  readonly fired: Effect.Effect<boolean>
  readonly counts: Effect.Effect<Record<Boundary, number>>
}

const makeInjector = (armed: { readonly boundary: Boundary; readonly crossing: number } | undefined) =>
  Effect.gen(function*() {
    const counts = yield* Ref.make<Record<Boundary, number>>({ beforeCommit: 0, afterCommit: 0, afterPublish: 0, beforeDelete: 0, midHandler: 0 })
    const dead = yield* Ref.make(false)
    const alive = Effect.flatMap(Ref.get(dead), (d) => (d && armed !== undefined ? Effect.die(new Crashed(armed)) : Effect.void))
    const cross = (boundary: Boundary) =>
      Effect.gen(function*() {
        yield* alive
        const n = yield* Ref.modify(counts, (c) => [c[boundary] + 1, { ...c, [boundary]: c[boundary] + 1 }])
        if (armed !== undefined && armed.boundary === boundary && armed.crossing === n) {
          yield* Ref.set(dead, true)
          return yield* Effect.die(new Crashed(armed))
        }
      })
    return { cross, alive, fired: Ref.get(dead), counts: Ref.get(counts) } satisfies Injector
  })

// nesting depth of storage transactions: only the outermost commits
const Depth = Context.Reference<number>("effect-minos/testing/CrashTest/Depth", { defaultValue: () => 0 })

/** The ports of `context`, with the injector at their boundaries. */
const instrument = <R>(context: Context.Context<R>, injector: Injector): Context.Context<R> => {
  let out = context as Context.Context<any>
  const uow = Context.getOption(context as Context.Context<UnitOfWork>, UnitOfWork)
  if (uow._tag === "Some") {
    const inner = uow.value
    out = Context.add(out, UnitOfWork, UnitOfWork.of({
      ...inner,
      transaction: (effect) =>
        Effect.gen(function*() {
          const depth = yield* Depth
          yield* injector.alive
          if (depth > 0) return yield* effect
          const result = yield* inner.transaction(Effect.tap(Effect.provideService(effect, Depth, depth + 1), () => injector.cross("beforeCommit")))
          yield* injector.cross("afterCommit")
          return result
        })
    }))
  }
  const outbox = Context.getOption(context as Context.Context<Outbox>, Outbox)
  if (outbox._tag === "Some") {
    const inner = outbox.value
    out = Context.add(out, Outbox, Outbox.of({
      ...inner,
      stage: (records, options) => Effect.andThen(injector.alive, inner.stage(records, options)),
      process: (limit, publish) =>
        Effect.andThen(injector.alive, inner.process(limit, (rows) => Effect.tap(publish(rows), () => injector.cross("beforeDelete"))))
    }))
  }
  const inbox = Context.getOption(context as Context.Context<Inbox>, Inbox)
  if (inbox._tag === "Some") {
    const inner = inbox.value
    out = Context.add(out, Inbox, Inbox.of({
      ...inner,
      claim: (group, topic, identifier, now) =>
        Effect.andThen(injector.alive, inner.claim(group, topic, identifier, now)).pipe(
          Effect.tap((claimed) => (claimed ? injector.cross("midHandler") : Effect.void))
        ),
      deadLetter: (letter) => Effect.andThen(injector.alive, inner.deadLetter(letter))
    }))
  }
  const broker = Context.getOption(context as Context.Context<Broker>, Broker)
  if (broker._tag === "Some") {
    const inner = broker.value
    out = Context.add(out, Broker, Broker.of({
      ...inner,
      publish: (records) => Effect.andThen(injector.alive, inner.publish(records)).pipe(Effect.tap(() => injector.cross("afterPublish"))),
      consume: (options) => inner.consume({ ...options, handle: (records) => Effect.andThen(injector.alive, options.handle(records)) })
    }))
  }
  return out as Context.Context<R>
}

const describe = (cause: Cause.Cause<unknown>): string => {
  const e = Cause.squash(cause) as { message?: unknown }
  return typeof e?.message === "string" ? e.message : String(e)
}

/**
 * Runs the scenario without a crash, then with a crash at every crossing of every boundary; never
 * fails: the report says which crash points broke `then`.
 *
 * @since 0.1.0
 */
export const run = <RI, EI, RS, ES, A, EW, EC>(options: Options<RI, EI, RS, ES, A, EW, EC>): Effect.Effect<Report, EI | ES | EW | EC> =>
  Effect.gen(function*() {
    const settle = Duration.fromInputUnsafe(options.settle ?? "20 seconds")
    const quiet = Duration.fromInputUnsafe(options.quiet ?? "300 millis")
    // an assertion that throws is a defect: retried too, until it passes or `settle` runs out; the
    // last word is one more run of `then` after a quiet period (late duplicates fail it)
    const check = options.then.pipe(
      Effect.catchDefect((defect) => Effect.fail(defect)),
      Effect.retry(Schedule.spaced("50 millis")),
      Effect.timeoutOption(settle),
      Effect.ignore
    )
    // one life of the service on (instrumented) infrastructure, under `scope`
    const life = (infra: Context.Context<RI>, injector: Injector, scope: Scope.Scope) =>
      Layer.buildWithScope(options.service, scope).pipe(
        Effect.provide(instrument(infra, injector)),
        Effect.map((built) => Context.merge(instrument(infra, injector), built) as Context.Context<RI | RS>)
      )

    // the clean run: crossings counted, and `then` must hold without any crash
    const crossings = yield* Effect.scoped(Effect.gen(function*() {
      const infra = yield* Layer.build(options.infrastructure())
      const injector = yield* makeInjector(undefined)
      const scope = yield* Scope.make()
      const ctx = yield* life(infra, injector, scope)
      yield* Effect.provide(options.when, ctx)
      yield* Effect.provide(Effect.andThen(check, Effect.andThen(Effect.sleep(quiet), options.then)), ctx)
      const counts = yield* injector.counts
      yield* Scope.close(scope, Exit.void)
      return counts
    }))

    const outcomes: Array<Outcome> = []
    for (const boundary of options.boundaries ?? boundaries) {
      const n = Math.min(crossings[boundary], options.maxCrossings ?? 20)
      for (let crossing = 1; crossing <= n; crossing++) {
        const outcome = yield* Effect.scoped(Effect.gen(function*() {
          const infra = yield* Layer.build(options.infrastructure())
          const injector = yield* makeInjector({ boundary, crossing })
          const first = yield* Scope.make()
          const ctx1 = yield* life(infra, injector, first)
          const attempt = yield* Effect.exit(Effect.provide(options.when, ctx1))
          // the crash may come after `when` returned (a relay, a consumer): wait for it, bounded
          const fired = yield* injector.fired.pipe(
            Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (f) => f }),
            Effect.timeoutOption(settle)
          )
          yield* Scope.close(first, Exit.void)
          if (fired._tag === "None") {
            return { boundary, crossing, acknowledged: Exit.isSuccess(attempt), passed: false, error: "the crash point was not reached again" } satisfies Outcome
          }
          // the restart: same stores and broker, a new life, the client retrying what was not acknowledged
          const second = yield* Scope.make()
          const ctx2 = yield* life(infra, yield* makeInjector(undefined), second)
          if (Exit.isFailure(attempt)) yield* Effect.ignore(Effect.provide(options.when, ctx2))
          const verdict = yield* Effect.exit(Effect.provide(Effect.andThen(check, Effect.andThen(Effect.sleep(quiet), options.then)), ctx2))
          yield* Scope.close(second, Exit.void)
          return {
            boundary,
            crossing,
            acknowledged: Exit.isSuccess(attempt),
            passed: Exit.isSuccess(verdict),
            ...(Exit.isFailure(verdict) ? { error: describe(verdict.cause) } : {})
          } satisfies Outcome
        }))
        outcomes.push(outcome)
      }
    }
    return { crossings, outcomes } satisfies Report
  })

/**
 * Throws an `AssertionError` naming every crash point whose check failed (and fails when no crash
 * point was reached at all: the scenario crossed no boundary).
 *
 * @since 0.1.0
 */
export const assertAllPassed = (report: Report): void => {
  if (report.outcomes.length === 0) throw new AssertionError({ message: "the scenario crossed no persistence boundary: nothing was crash-tested" })
  const failed = report.outcomes.filter((o) => !o.passed)
  if (failed.length > 0) {
    throw new AssertionError({
      message: `${failed.length} of ${report.outcomes.length} crash points broke exactly-once:\n` +
        failed.map((o) => `  ${o.boundary} #${o.crossing}${o.acknowledged ? " (acknowledged)" : ""}: ${o.error ?? ""}`).join("\n")
    })
  }
}
