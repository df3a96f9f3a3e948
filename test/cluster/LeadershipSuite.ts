/** The Leadership conformance suite: run on the local backend and on PostgreSQL. */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, type Duration, Effect, Fiber, Ref, Schedule, type Scope } from "effect"
import type { LeadershipShape } from "../../src/cluster/Leadership.ts"

export interface Replicas {
  /** Two replicas of one service (on the local backend: one process, so one shared service). */
  readonly make: Effect.Effect<readonly [LeadershipShape, LeadershipShape], unknown, Scope.Scope>
  /** Cuts replica A off (PostgreSQL: terminates its session); absent where a replica cannot be cut off alone. */
  readonly cutOff?: (name: string) => Effect.Effect<void, unknown, Scope.Scope>
}

/** Polls `check` every 20 ms until it holds, for at most `within`. */
const eventually = (check: Effect.Effect<boolean>, within: Duration.Input = "10 seconds") =>
  check.pipe(
    Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (ok) => ok }),
    Effect.timeoutOrElse({ duration: within, orElse: () => Effect.succeed(false) })
  )

export const suite = (name: string, replicas: Replicas) =>
  describe(`Leadership (${name})`, () => {
    it.live("runs a singleton on one replica at a time, and again after it ends", () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b] = yield* replicas.make
        const running = yield* Ref.make(0)
        const most = yield* Ref.make(0)
        const runs = yield* Ref.make(0)
        const job = Effect.gen(function*() {
          const now = yield* Ref.updateAndGet(running, (n) => n + 1)
          yield* Ref.update(most, (m) => Math.max(m, now))
          yield* Ref.update(runs, (n) => n + 1)
          yield* Effect.sleep("150 millis")
          yield* Ref.update(running, (n) => n - 1)
        })
        const fa = yield* Effect.forkChild(a.run("job", job))
        const fb = yield* Effect.forkChild(b.run("job", job))
        assert.isTrue(yield* eventually(Effect.map(Ref.get(runs), (n) => n >= 4)))
        yield* Fiber.interrupt(fa)
        yield* Fiber.interrupt(fb)
        assert.strictEqual(yield* Ref.get(most), 1)
      })))

    it.live("another replica takes over when the leader stops", () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b] = yield* replicas.make
        const aStarted = yield* Deferred.make<void>()
        const bStarted = yield* Deferred.make<void>()
        const fa = yield* Effect.forkChild(a.run("takeover", Effect.andThen(Deferred.succeed(aStarted, undefined), Effect.never)))
        yield* Deferred.await(aStarted)
        assert.isTrue(yield* a.isLeader("takeover"))
        const fb = yield* Effect.forkChild(b.run("takeover", Effect.andThen(Deferred.succeed(bStarted, undefined), Effect.never)))
        yield* Effect.sleep("300 millis")
        assert.isFalse(yield* Deferred.isDone(bStarted))
        yield* Fiber.interrupt(fa)
        assert.isTrue(yield* eventually(Deferred.isDone(bStarted)))
        yield* Fiber.interrupt(fb)
      })))

    it.live("different names run at the same time on one replica", () =>
      Effect.scoped(Effect.gen(function*() {
        const [a] = yield* replicas.make
        const one = yield* Deferred.make<void>()
        const two = yield* Deferred.make<void>()
        yield* Effect.forkScoped(a.run("one", Effect.andThen(Deferred.succeed(one, undefined), Effect.never)))
        yield* Effect.forkScoped(a.run("two", Effect.andThen(Deferred.succeed(two, undefined), Effect.never)))
        assert.isTrue(yield* eventually(Effect.zipWith(Deferred.isDone(one), Deferred.isDone(two), (x, y) => x && y)))
      })))

    it.live("a failing singleton is logged and run again", () =>
      Effect.scoped(Effect.gen(function*() {
        const [a] = yield* replicas.make
        const runs = yield* Ref.make(0)
        yield* Effect.forkScoped(a.run("flaky", Effect.andThen(Ref.update(runs, (n) => n + 1), Effect.fail("boom"))))
        assert.isTrue(yield* eventually(Effect.map(Ref.get(runs), (n) => n >= 2)))
      })))

    if (replicas.cutOff !== undefined) {
      const cutOff = replicas.cutOff
      it.live("a leader cut off from the cluster stops, and another replica takes over", () =>
        Effect.scoped(Effect.gen(function*() {
          const [a, b] = yield* replicas.make
          const aStarted = yield* Deferred.make<void>()
          const aStopped = yield* Deferred.make<void>()
          const bStarted = yield* Deferred.make<void>()
          yield* Effect.forkScoped(a.run("cut", Effect.andThen(Deferred.succeed(aStarted, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Deferred.succeed(aStopped, undefined))
          )))
          yield* Deferred.await(aStarted)
          yield* Effect.forkScoped(b.run("cut", Effect.andThen(Deferred.succeed(bStarted, undefined), Effect.never)))
          yield* cutOff("cut")
          assert.isTrue(yield* eventually(Deferred.isDone(aStopped)))
          assert.isTrue(yield* eventually(Deferred.isDone(bStarted)))
        })))
    }
  })
