/** Conformance suite of the ProjectionStore port; every backend runs it. */
import { assert, it as baseIt } from "@effect/vitest"
import { Effect, Layer, Option, Schedule } from "effect"
import { ProjectionStore, type ProjectionStoreError } from "../../src/readmodel/ProjectionStore.ts"
import type * as Storage from "../../src/storage/Storage.ts"
import { UnitOfWork } from "../../src/storage/UnitOfWork.ts"

export const suite = (name: string, layer: Layer.Layer<Storage.Services, unknown>) =>
  baseIt.layer(layer, { timeout: "60 seconds", excludeTestServices: true })(`ProjectionStore (${name})`, (it) => {
    const p = () => `p${crypto.randomUUID().slice(0, 8)}#1`
    const id = () => crypto.randomUUID()

    it.effect("marks: 0 when none, set and read back, per projection and aggregate", () =>
      Effect.gen(function*() {
        const store = yield* ProjectionStore
        const uow = yield* UnitOfWork
        const [a, b] = [p(), p()]
        const x = id()
        assert.strictEqual(yield* store.mark(a, x), 0)
        yield* uow.transaction(Effect.gen(function*() {
          assert.strictEqual(yield* store.lock(a, x), 0)
          yield* store.setMark(a, x, 3)
          // the unit sees its own write
          assert.strictEqual(yield* store.mark(a, x), 3)
        }))
        assert.strictEqual(yield* store.mark(a, x), 3)
        assert.strictEqual(yield* store.mark(b, x), 0)
        assert.strictEqual(yield* store.mark(a, id()), 0)
        assert.strictEqual(yield* uow.transaction(store.lock(a, x)), 3)
      }))

    it.effect("a failed unit writes no mark and no parked event", () =>
      Effect.gen(function*() {
        const store = yield* ProjectionStore
        const uow = yield* UnitOfWork
        const a = p()
        const x = id()
        const failed = yield* uow.transaction(Effect.gen(function*() {
          yield* store.lock(a, x)
          yield* store.setMark(a, x, 1)
          yield* store.park({ projection: a, aggregateId: x, version: 3, event: { v: 3 }, parkedAt: 1 })
          return yield* Effect.fail("boom" as const)
        })).pipe(Effect.flip)
        assert.strictEqual(failed, "boom")
        assert.strictEqual(yield* store.mark(a, x), 0)
        assert.strictEqual(yield* store.countParked(a), 0)
      }))

    it.effect("parked events: stored once, listed in order, removed by unpark", () =>
      Effect.gen(function*() {
        const store = yield* ProjectionStore
        const uow = yield* UnitOfWork
        const a = p()
        const sorted = [id(), id()].sort()
        const x = sorted[0]!
        const y = sorted[1]!
        yield* uow.transaction(Effect.gen(function*() {
          yield* store.lock(a, y)
          yield* store.park({ projection: a, aggregateId: y, version: 4, event: { n: "y4" }, parkedAt: 10 })
          yield* store.park({ projection: a, aggregateId: y, version: 3, event: { n: "y3" }, parkedAt: 11 })
        }))
        yield* store.park({ projection: a, aggregateId: x, version: 2, event: { n: "x2" }, parkedAt: 12 })
        // parking the same version again keeps the first
        yield* store.park({ projection: a, aggregateId: x, version: 2, event: { n: "other" }, parkedAt: 13 })
        const listed = yield* store.parked(a)
        assert.deepStrictEqual(listed.map((e) => [e.aggregateId, e.version, e.event]), [[x, 2, { n: "x2" }], [y, 3, { n: "y3" }], [y, 4, { n: "y4" }]])
        assert.strictEqual(yield* store.countParked(a), 3)
        assert.deepStrictEqual((yield* store.parked(a, { limit: 1 })).length, 1)
        const taken = yield* uow.transaction(Effect.gen(function*() {
          const got = yield* store.unpark(a, y, 3)
          // gone for the rest of the unit
          assert.isTrue(Option.isNone(yield* store.unpark(a, y, 3)))
          assert.strictEqual(yield* store.countParked(a), 2)
          return got
        }))
        assert.deepStrictEqual(Option.map(taken, (e) => [e.version, e.event, e.parkedAt]), Option.some([3, { n: "y3" }, 11]))
        assert.isTrue(Option.isNone(yield* store.unpark(a, y, 3)))
        assert.strictEqual(yield* store.countParked(a), 2)
        yield* store.clear(a)
        assert.strictEqual(yield* store.countParked(a), 0)
      }))

    it.effect("state: compare-and-set by revision", () =>
      Effect.gen(function*() {
        const store = yield* ProjectionStore
        const uow = yield* UnitOfWork
        const key = p()
        assert.isTrue(Option.isNone(yield* store.getState(key)))
        assert.strictEqual(yield* store.putState(key, { checkpoint: "a" }, 0), 1)
        const again = yield* Effect.flip(store.putState(key, { checkpoint: "b" }, 0))
        assert.strictEqual(again.reason, "Conflict")
        assert.isTrue(again.isRetryable)
        assert.strictEqual(yield* uow.transaction(store.putState(key, { checkpoint: "b" }, 1)), 2)
        const stale = yield* Effect.flip(uow.transaction(store.putState(key, { checkpoint: "c" }, 1)))
        assert.strictEqual((stale as ProjectionStoreError).reason, "Conflict")
        assert.deepStrictEqual(yield* store.getState(key), Option.some({ value: { checkpoint: "b" }, revision: 2 }))
      }))

    it.effect("concurrent appliers of one aggregate never lose an update", () =>
      Effect.gen(function*() {
        const store = yield* ProjectionStore
        const uow = yield* UnitOfWork
        const a = p()
        const x = id()
        // each transaction reads the mark and writes mark + 1; a lost update would leave fewer than 12
        const increment = uow.transaction(Effect.gen(function*() {
          const mark = yield* store.lock(a, x)
          yield* Effect.yieldNow
          yield* store.setMark(a, x, mark + 1)
        })).pipe(Effect.retry({ while: (e) => (e as { isRetryable?: boolean }).isRetryable === true, schedule: Schedule.spaced("2 millis"), times: 200 }))
        yield* Effect.all(Array.from({ length: 12 }, () => increment), { concurrency: "unbounded", discard: true })
        assert.strictEqual(yield* store.mark(a, x), 12)
      }))

    it.effect("a park and an apply of one aggregate never both commit unseen", () =>
      Effect.gen(function*() {
        const store = yield* ProjectionStore
        const uow = yield* UnitOfWork
        const a = p()
        const x = id()
        const retrying = <A, E>(e: Effect.Effect<A, E>) =>
          e.pipe(Effect.retry({ while: (err) => (err as { isRetryable?: boolean }).isRetryable === true, schedule: Schedule.spaced("2 millis"), times: 200 }))
        // the applier of version 1 drains version 2 when it is parked; the parker parks 2 unless 1 is applied
        const apply1 = retrying(uow.transaction(Effect.gen(function*() {
          const mark = yield* store.lock(a, x)
          if (mark >= 1) return
          yield* Effect.yieldNow
          const next = yield* store.unpark(a, x, 2)
          yield* store.setMark(a, x, Option.isSome(next) ? 2 : 1)
        })))
        const park2 = retrying(uow.transaction(Effect.gen(function*() {
          const mark = yield* store.lock(a, x)
          yield* Effect.yieldNow
          if (mark >= 1) yield* store.setMark(a, x, 2)
          else yield* store.park({ projection: a, aggregateId: x, version: 2, event: {}, parkedAt: 1 })
        })))
        yield* Effect.all([apply1, park2], { concurrency: "unbounded", discard: true })
        assert.strictEqual(yield* store.mark(a, x), 2)
        assert.strictEqual(yield* store.countParked(a), 0)
      }))

    it.effect("bad input is refused with InvalidInput and writes nothing", () =>
      Effect.gen(function*() {
        const store = yield* ProjectionStore
        const a = p()
        for (const e of [
          store.lock("", id()),
          store.lock(a, ""),
          store.setMark(a, id(), -1),
          store.setMark(a, id(), 1.5),
          store.park({ projection: a, aggregateId: id(), version: 2, event: { f: () => 1 }, parkedAt: 1 }),
          store.putState(a, { n: Number.NaN }, 0),
          store.putState(a, {}, -1)
        ]) {
          const error = yield* Effect.flip(e)
          assert.strictEqual(error.reason, "InvalidInput")
        }
        assert.strictEqual(yield* store.countParked(a), 0)
        assert.isTrue(Option.isNone(yield* store.getState(a)))
      }))
  })
