/** The projection engine on one storage backend: every delivery order, duplicates, concurrency. */
import { assert, it as baseIt } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Schedule } from "effect"
import { ProjectionStore } from "../../src/readmodel/ProjectionStore.ts"
import type * as Storage from "../../src/storage/Storage.ts"
import { created, deleted, examViews, permutations, updated } from "./Fixtures.ts"

const retrying = <A, E, R>(e: Effect.Effect<A, E, R>) =>
  e.pipe(Effect.retry({ while: (err) => (err as { isRetryable?: boolean }).isRetryable === true, schedule: Schedule.spaced("2 millis"), times: 500 }))

const fields = { title: "Algebra", subject: "math", durationMinutes: 90, status: "draft" }

export const suite = (name: string, layer: Layer.Layer<Storage.Services, unknown>) =>
  baseIt.layer(layer, { timeout: "120 seconds", excludeTestServices: true })(`Projection (${name})`, (it) => {
    it.effect("create/update/update/delete in every order, each duplicated: the final state every time", () =>
      Effect.gen(function*() {
        const views = examViews(`perm.${name}`)
        const store = yield* ProjectionStore
        let runs = 0
        for (const withDelete of [false, true]) {
          const history = (id: string) => [
            created(id, fields),
            updated(id, 2, [{ name: "title", value: "Algebra II" }, { name: "roomUuid", value: "r1" }]),
            updated(id, 3, [{ name: "durationMinutes", value: 120 }, { name: "roomUuid" }]),
            ...(withDelete ? [deleted(id, 4)] : [])
          ]
          for (const order of permutations([0, 1, 2, ...(withDelete ? [3] : [])])) {
            const id = crypto.randomUUID()
            const events = history(id)
            // each event twice: once in the permutation, once again right after a random other one
            const deliveries = order.flatMap((i, k) => (k % 2 === 0 ? [events[i]!, events[order[(k + 1) % order.length]!]!] : [events[i]!]))
            for (const e of [...deliveries, ...events]) yield* views.handle(e)
            const view = yield* views.get(id)
            if (withDelete) assert.isTrue(Option.isNone(view), `deleted exam still there after order ${order}`)
            else {
              assert.deepStrictEqual(view, Option.some({ uuid: id, version: 3, title: "Algebra II", subject: "math", durationMinutes: 120, status: "draft" }), `order ${order}`)
            }
            assert.strictEqual(yield* views.version(id), withDelete ? 4 : 3)
            runs++
          }
        }
        assert.strictEqual(runs, 6 + 24)
        assert.strictEqual(yield* store.countParked(`perm.${name}#1`), 0)
      }))

    it.effect("an early event waits parked until its predecessor arrives, then both apply in order", () =>
      Effect.gen(function*() {
        const views = examViews(`park.${name}`)
        const id = crypto.randomUUID()
        assert.deepStrictEqual(yield* views.handle(updated(id, 3, [{ name: "title", value: "Three" }])), { _tag: "Parked", mark: 0 })
        assert.deepStrictEqual(yield* views.handle(updated(id, 2, [{ name: "title", value: "Two" }])), { _tag: "Parked", mark: 0 })
        assert.isTrue(Option.isNone(yield* views.get(id)))
        const store = yield* ProjectionStore
        assert.strictEqual(yield* store.countParked(`park.${name}#1`), 2)
        assert.deepStrictEqual(yield* views.handle(created(id, fields)), { _tag: "Applied", version: 3, drained: 2 })
        assert.strictEqual(Option.getOrThrow(yield* views.get(id)).title, "Three")
        assert.deepStrictEqual(yield* views.handle(updated(id, 2, [{ name: "title", value: "Two" }])), { _tag: "Duplicate", mark: 3 })
        assert.strictEqual(yield* store.countParked(`park.${name}#1`), 0)
      }))

    it.effect("events of many aggregates handled concurrently, shuffled: every document ends in its final state", () =>
      Effect.gen(function*() {
        const views = examViews(`conc.${name}`)
        const ids = Array.from({ length: 20 }, () => crypto.randomUUID())
        const all = ids.flatMap((id, n) => [
          created(id, fields),
          updated(id, 2, [{ name: "title", value: `T${n}` }]),
          updated(id, 3, [{ name: "seats", value: n + 1 }]),
          ...(n % 4 === 0 ? [deleted(id, 4)] : [])
        ])
        const shuffled = [...all, ...all.slice(0, 15)].sort(() => Math.random() - 0.5)
        yield* Effect.forEach(shuffled, (e) => retrying(views.handle(e)), { concurrency: 8, discard: true })
        for (const [n, id] of ids.entries()) {
          const view = yield* views.get(id)
          if (n % 4 === 0) assert.isTrue(Option.isNone(view))
          else assert.deepStrictEqual(Option.map(view, (v) => [v.version, v.title, v.seats]), Option.some([3, `T${n}`, n + 1]))
        }
        assert.strictEqual(yield* views.count(), 15)
      }))

    it.effect("an event that is not a domain event of the aggregate fails with InvalidEvent and changes nothing", () =>
      Effect.gen(function*() {
        const views = examViews(`bad.${name}`)
        const id = crypto.randomUUID()
        for (const bad of [{ nothing: true }, { ...created(id, fields), version: 0 }, { ...created(id, fields), data: { _tag: "Nope" } }]) {
          const error = yield* Effect.flip(views.handle(bad))
          assert.strictEqual(error._tag, "ProjectionError")
        }
        // a handler that throws (here: fields the entity refuses) fails too, and rolls back
        assert.isTrue(Exit.isFailure(yield* Effect.exit(views.handle(created(id, { title: 3 })))))
        assert.strictEqual(yield* views.version(id), 0)
        assert.isTrue(Option.isNone(yield* views.get(id)))
      }))
  })
