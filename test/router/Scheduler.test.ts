import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Ref } from "effect"
import { TestClock } from "effect/testing"
import * as Leadership from "../../src/cluster/Leadership.ts"
import * as Router from "../../src/router/Router.ts"
import * as Scheduler from "../../src/router/Scheduler.ts"

describe("Scheduler", () => {
  it.effect("runs a cron job at each match and never before", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const routes = yield* Router.make([Router.periodic("*/5 * * * *", "tick", Ref.update(runs, (n) => n + 1))])
      const fiber = yield* Effect.forkChild(Scheduler.schedule(routes.periodic[0]!))
      yield* TestClock.adjust("4 minutes")
      assert.strictEqual(yield* Ref.get(runs), 0)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* Ref.get(runs), 1)
      yield* TestClock.adjust("15 minutes")
      assert.strictEqual(yield* Ref.get(runs), 4)
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("@reboot runs once at start", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const routes = yield* Router.make([Router.periodic("@reboot", "boot", Ref.update(runs, (n) => n + 1))])
      yield* Scheduler.schedule(routes.periodic[0]!)
      yield* TestClock.adjust("1 hour")
      assert.strictEqual(yield* Ref.get(runs), 1)
    }))

  it.effect("a failing run is logged and the schedule carries on", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const job = Effect.gen(function*() {
        const n = yield* Ref.updateAndGet(runs, (x) => x + 1)
        if (n === 1) return yield* Effect.fail("first run fails")
        if (n === 2) return yield* Effect.die(new Error("second run dies"))
      })
      const routes = yield* Router.make([Router.periodic("* * * * *", "flaky", job)])
      const fiber = yield* Effect.forkChild(Scheduler.schedule(routes.periodic[0]!))
      yield* TestClock.adjust("3 minutes")
      assert.strictEqual(yield* Ref.get(runs), 3)
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("with two replicas, a cron job runs once per match and @reboot once per replica", () =>
    Effect.gen(function*() {
      const ticks = yield* Ref.make(0)
      const boots = yield* Ref.make(0)
      const routes = Router.layer([
        Router.periodic("* * * * *", "tick", Ref.update(ticks, (n) => n + 1)),
        Router.periodic("@reboot", "boot", Ref.update(boots, (n) => n + 1))
      ])
      const leadership = Leadership.layerLocal({ retryInterval: "1 second" })
      // two replicas: their own routes and scheduler, one cluster-wide leadership
      const replica = Scheduler.layer.pipe(Layer.provide(routes))
      yield* Layer.build(Layer.merge(replica, Layer.fresh(replica)).pipe(Layer.provide(leadership)))
      yield* TestClock.adjust("3 minutes")
      assert.strictEqual(yield* Ref.get(ticks), 3)
      assert.strictEqual(yield* Ref.get(boots), 2)
    }))
})
