/** Conformance suite of the Outbox port; every backend runs it. */
import { assert, it as baseIt } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Ref } from "effect"
import { BrokerError } from "../../src/broker/Broker.ts"
import { Outbox, type OutboxRow } from "../../src/queue/Outbox.ts"
import type * as Storage from "../../src/storage/Storage.ts"
import { UnitOfWork } from "../../src/storage/UnitOfWork.ts"

const drain = Effect.gen(function*() {
  const outbox = yield* Outbox
  const all: Array<OutboxRow> = []
  for (;;) {
    const n = yield* outbox.process(100, (rows) => Effect.sync(() => all.push(...rows)))
    if (n === 0) return all
  }
})

export const suite = (name: string, layer: Layer.Layer<Storage.Services, unknown>) =>
  baseIt.layer(layer, { timeout: "60 seconds", excludeTestServices: true })(`Outbox (${name})`, (it) => {
    it.effect("stages rows and hands them out oldest first, deleting them after publish", () =>
      Effect.gen(function*() {
        const outbox = yield* Outbox
        yield* drain
        yield* outbox.stage([
          { topic: "A", key: "k1", value: "1", headers: { id: "m1" } },
          { topic: "B", key: null, value: "2", headers: {} }
        ])
        yield* outbox.stage([{ topic: "A", key: "k1", value: "3", headers: {} }])
        assert.strictEqual(yield* outbox.pending, 3)
        const rows = yield* drain
        assert.deepStrictEqual(rows.map((r) => [r.topic, r.key, r.value]), [["A", "k1", "1"], ["B", null, "2"], ["A", "k1", "3"]])
        assert.deepStrictEqual(rows[0]!.headers, { id: "m1" })
        assert.isTrue(rows[0]!.id < rows[1]!.id && rows[1]!.id < rows[2]!.id)
        assert.strictEqual(yield* outbox.pending, 0)
      }))

    it.effect("a failed publish keeps the rows for the next attempt", () =>
      Effect.gen(function*() {
        const outbox = yield* Outbox
        yield* drain
        yield* outbox.stage([{ topic: "A", key: null, value: "x", headers: {} }])
        const exit = yield* outbox.process(10, () => Effect.fail("broker down" as const)).pipe(Effect.exit)
        assert.isTrue(Exit.isFailure(exit))
        assert.strictEqual(yield* outbox.pending, 1)
        const died = yield* outbox.process(10, () => Effect.die("boom")).pipe(Effect.exit)
        assert.isTrue(Exit.isFailure(died))
        const rows = yield* drain
        assert.deepStrictEqual(rows.map((r) => r.value), ["x"])
      }))

    it.effect("a partly failed publish deletes only the acknowledged rows, keeping each key's order", () =>
      Effect.gen(function*() {
        const outbox = yield* Outbox
        yield* drain
        yield* outbox.stage([
          { topic: "P", key: "k1", value: "1", headers: {} },
          { topic: "P", key: "k2", value: "2", headers: {} },
          { topic: "P", key: "k1", value: "3", headers: {} },
          { topic: "P", key: null, value: "4", headers: {} },
          { topic: "Q", key: "k1", value: "5", headers: {} },
          { topic: "P", key: "k2", value: "6", headers: {} }
        ])
        // the broker acknowledged all but the first and the last: "3" follows the unacknowledged "1"
        // of the same key, so it stays and goes out again after it
        const offered: Array<ReadonlyArray<string>> = []
        const failure = yield* outbox.process(10, (rows) =>
          Effect.suspend(() => {
            offered.push(rows.map((r) => r.value))
            return Effect.fail(new BrokerError({ reason: "Unavailable", message: "partition 0 has no leader", acknowledged: [1, 2, 3, 4] }))
          })
        ).pipe(Effect.flip)
        assert.strictEqual(failure._tag, "BrokerError")
        assert.deepStrictEqual(offered, [["1", "2", "3", "4", "5", "6"]])
        assert.strictEqual(yield* outbox.pending, 3)
        const rest = yield* drain
        assert.deepStrictEqual(rest.map((r) => r.value), ["1", "3", "6"])
        // a failure that acknowledges nothing (or is not a broker error) keeps every row
        yield* outbox.stage([{ topic: "P", key: "k", value: "7", headers: {} }])
        yield* outbox.process(10, () => Effect.fail(new BrokerError({ reason: "Timeout", message: "no answer" }))).pipe(Effect.flip)
        yield* outbox.process(10, () => Effect.fail({ acknowledged: [0] })).pipe(Effect.flip)
        assert.deepStrictEqual((yield* drain).map((r) => r.value), ["7"])
      }))

    it.effect("rows staged in a failed unit of work never appear", () =>
      Effect.gen(function*() {
        const outbox = yield* Outbox
        const uow = yield* UnitOfWork
        yield* drain
        yield* uow.transaction(Effect.andThen(outbox.stage([{ topic: "A", key: null, value: "lost", headers: {} }]), Effect.fail("no"))).pipe(Effect.exit)
        yield* uow.transaction(outbox.stage([{ topic: "A", key: null, value: "kept", headers: {} }]))
        assert.deepStrictEqual((yield* drain).map((r) => r.value), ["kept"])
      }))

    it.effect("two relays at once never publish the same row twice", () =>
      Effect.gen(function*() {
        const outbox = yield* Outbox
        yield* drain
        yield* outbox.stage(Array.from({ length: 300 }, (_, i) => ({ topic: "C", key: String(i % 7), value: String(i), headers: {} })))
        const seen = yield* Ref.make<Array<string>>([])
        const relay = Effect.gen(function*() {
          for (;;) {
            const n = yield* outbox.process(25, (rows) => Effect.andThen(Ref.update(seen, (xs) => [...xs, ...rows.map((r) => r.value)]), Effect.sleep("2 millis")))
            if (n === 0) return
          }
        })
        yield* Effect.all([relay, relay], { concurrency: 2 })
        const values = yield* Ref.get(seen)
        assert.strictEqual(values.length, 300)
        assert.strictEqual(new Set(values).size, 300)
      }))

    it.effect("an invalid topic is refused and nothing is stored", () =>
      Effect.gen(function*() {
        const outbox = yield* Outbox
        yield* drain
        const e = yield* Effect.flip(outbox.stage([{ topic: "ok", key: null, value: "1", headers: {} }, { topic: "not ok!", key: null, value: "2", headers: {} }]))
        assert.strictEqual(e.reason, "InvalidInput")
        assert.strictEqual(yield* outbox.pending, 0)
      }))

    it.effect("awaitWork wakes up after a commit staged rows", () =>
      Effect.gen(function*() {
        const outbox = yield* Outbox
        const uow = yield* UnitOfWork
        yield* drain
        const waiter = yield* outbox.awaitWork(30_000).pipe(Effect.forkChild)
        yield* Effect.sleep("200 millis")
        yield* uow.transaction(outbox.stage([{ topic: "W", key: null, value: "w", headers: {} }]))
        // the waiter would sleep 30 s; it must be woken well before the 10 s timeout fails the test
        yield* Fiber.join(waiter).pipe(Effect.timeout("10 seconds"))
        yield* drain
      }))
  })
