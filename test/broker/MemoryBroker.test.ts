import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { TestClock } from "effect/testing"
import { createRequire } from "node:module"
import { Broker, type DeliveredRecord } from "../../src/broker/Broker.ts"
import * as MemoryBroker from "../../src/broker/MemoryBroker.ts"
import { Inbox, join, suite, valuesOf } from "./BrokerSuite.ts"

suite("MemoryBroker", MemoryBroker.layer(), { wait: "5 seconds" })

/**
 * Lets the broker's fibers run: an `Inbox` wakes the test from inside `handle`, before the broker
 * committed the batch, and a member leaving before that commit gets its batch redelivered.
 */
const settle = Effect.repeat(Effect.yieldNow, { times: 20 })

/** A key that lands on `partition` of `partitions`. */
const keyOn = (partition: number, partitions: number, prefix = "key"): string => {
  for (let i = 0;; i++) if (MemoryBroker.partitionOf(`${prefix}-${i}`, partitions) === partition) return `${prefix}-${i}`
}

// These run on the TestClock: the in-process broker must never need time to pass to deliver.
describe("MemoryBroker", () => {
  it("puts a key on the partition Kafka's default partitioner picks", () => {
    const murmur2 = createRequire(import.meta.url)("kafkajs/src/producer/partitioners/default/murmur2.js") as (key: string) => number
    const keys = ["", "a", "ab", "abc", "abcd", "abcde", "order-42", "ünïcødé ✓ 日本", "x".repeat(101), "0c8a4b5e-7f7e-4f0c-9a53-1d2b3c4d5e6f"]
    for (const key of keys) {
      for (const n of [1, 2, 3, 7, 12]) {
        assert.strictEqual(MemoryBroker.partitionOf(key, n), (murmur2(key) & 0x7fffffff) % n, `${JSON.stringify(key)} over ${n}`)
      }
    }
  })

  it.effect("wakes an idle consumer on publish without the clock moving", () =>
    Effect.gen(function*() {
      const broker = yield* Broker
      const got = new Inbox("consumer")
      yield* join({ group: "g", topics: ["t"], handle: got.handle })
      for (let i = 0; i < 3; i++) {
        yield* broker.publish([{ topic: "t", key: "k", value: `v${i}`, headers: {} }])
        yield* got.count(i + 1)
      }
      assert.deepStrictEqual(valuesOf(got.records), ["v0", "v1", "v2"])
      assert.deepStrictEqual(got.records.map((r) => r.offset), ["0", "1", "2"])
    }).pipe(Effect.provide(MemoryBroker.layer())))

  it.effect("waits a doubling backoff before delivering a failed batch again", () =>
    Effect.gen(function*() {
      const broker = yield* Broker
      const attempts = new Inbox("attempts")
      yield* broker.publish([{ topic: "t", key: "k", value: "v", headers: {} }])
      yield* join({
        group: "g",
        topics: ["t"],
        handle: (batch) =>
          Effect.andThen(attempts.handle(batch), Effect.suspend(() => (attempts.batches.length <= 2 ? Effect.fail("not yet") : Effect.void)))
      })
      yield* attempts.count(1)
      yield* settle
      yield* TestClock.adjust("99 millis")
      yield* settle
      assert.strictEqual(attempts.batches.length, 1, "no redelivery before the first backoff (100 ms)")
      yield* TestClock.adjust("1 millis")
      yield* attempts.count(2)
      yield* settle
      yield* TestClock.adjust("199 millis")
      yield* settle
      assert.strictEqual(attempts.batches.length, 2, "the second backoff is 200 ms")
      yield* TestClock.adjust("1 millis")
      yield* attempts.count(3)
      assert.deepStrictEqual(valuesOf(attempts.records), ["v", "v", "v"])
    }).pipe(Effect.provide(MemoryBroker.layer({ retryInitialMs: 100, retryMaxMs: 1_000 }))))

  it.effect("lets the batch in flight finish when a joining member takes its partition", () =>
    Effect.gen(function*() {
      const broker = yield* Broker
      // two partitions: alone, A owns both; when B joins, partition 1 moves to B
      const k0 = keyOn(0, 2)
      const k1 = keyOn(1, 2)
      const release = yield* Deferred.make<void>()
      const a = new Inbox("member A")
      const b = new Inbox("member B")
      const inFlight = new Inbox("A's batch in flight")
      yield* broker.publish([{ topic: "t", key: k1, value: "p1-first", headers: {} }])
      yield* join({
        group: "g",
        topics: ["t"],
        handle: (batch) =>
          batch.some((r) => r.value === "p1-first")
            ? Effect.andThen(inFlight.handle(batch), Effect.andThen(Deferred.await(release), a.handle(batch)))
            : a.handle(batch)
      })
      yield* inFlight.count(1)
      yield* join({ group: "g", topics: ["t"], handle: b.handle })
      yield* broker.publish([
        { topic: "t", key: k1, value: "p1-second", headers: {} },
        { topic: "t", key: k0, value: "p0", headers: {} }
      ])
      yield* a.until("p0 on A", (rs) => valuesOf(rs).includes("p0"))
      yield* settle
      assert.deepStrictEqual(valuesOf(b.records), [], "B waits for A's batch in flight on partition 1")
      yield* Deferred.succeed(release, undefined)
      yield* b.count(1)
      assert.sameMembers(valuesOf(a.records), ["p1-first", "p0"])
      assert.deepStrictEqual(valuesOf(b.records), ["p1-second"], "B continues after A's committed batch, nothing twice")
    }).pipe(Effect.provide(MemoryBroker.layer({ partitions: 2 }))))

  it.effect("gives the partitions of members that left to the one remaining", () =>
    Effect.gen(function*() {
      const broker = yield* Broker
      const inboxes = [new Inbox("A"), new Inbox("B"), new Inbox("C")]
      const members = []
      for (const inbox of inboxes) members.push(yield* join({ group: "g", topics: ["t"], handle: inbox.handle }))
      const keys = [0, 1, 2].map((p) => keyOn(p, 3))
      yield* broker.publish(keys.map((key) => ({ topic: "t", key, value: `before-${key}`, headers: {} })))
      for (const inbox of inboxes) yield* inbox.count(1) // one partition each
      yield* settle
      yield* members[0]!.leave
      yield* members[2]!.leave
      yield* broker.publish(keys.map((key) => ({ topic: "t", key, value: `after-${key}`, headers: {} })))
      yield* inboxes[1]!.count(4)
      assert.sameMembers(valuesOf(inboxes[1]!.records).filter((v) => v.startsWith("after-")), keys.map((k) => `after-${k}`))
      assert.strictEqual(inboxes[0]!.records.length + inboxes[2]!.records.length, 2, "the members that left got nothing more")
    }).pipe(Effect.provide(MemoryBroker.layer())))

  it.effect("handles at most `concurrency` partitions of a member at once", () =>
    Effect.gen(function*() {
      const broker = yield* Broker
      const release = yield* Deferred.make<void>()
      let inFlight = 0
      let most = 0
      const started = new Inbox("started")
      yield* join({
        group: "g",
        topics: ["t"],
        concurrency: 2,
        handle: (batch) =>
          Effect.gen(function*() {
            inFlight++
            most = Math.max(most, inFlight)
            yield* started.handle(batch)
            yield* Deferred.await(release)
            inFlight--
          })
      })
      yield* broker.publish([0, 1, 2, 3].map((p) => ({ topic: "t", key: keyOn(p, 4), value: `p${p}`, headers: {} })))
      yield* started.count(2)
      yield* settle
      assert.strictEqual(most, 2)
      yield* Deferred.succeed(release, undefined)
      yield* started.count(4)
      assert.strictEqual(most, 2)
    }).pipe(Effect.provide(MemoryBroker.layer({ partitions: 4 }))))

  it.effect("resumes a group from its committed offset after all members left", () =>
    Effect.gen(function*() {
      const broker = yield* Broker
      yield* broker.publish(["a", "b", "c"].map((value) => ({ topic: "t", key: "k", value, headers: {} })))
      const first = new Inbox("first member")
      const member = yield* join({ group: "g", topics: ["t"], handle: first.handle })
      yield* first.count(3)
      yield* settle
      yield* member.leave
      yield* broker.publish(["d", "e"].map((value) => ({ topic: "t", key: "k", value, headers: {} })))
      const second = new Inbox("second member")
      yield* join({ group: "g", topics: ["t"], handle: second.handle })
      yield* second.count(2)
      assert.deepStrictEqual(valuesOf(second.records), ["d", "e"])
    }).pipe(Effect.provide(MemoryBroker.layer())))

  it.effect("keeps the newest records when retention is bounded; a lagging group skips ahead", () =>
    Effect.gen(function*() {
      const broker = yield* Broker
      yield* broker.publish(Array.from({ length: 25 }, (_, i) => ({ topic: "t", key: null, value: `v${i}`, headers: {} })))
      const got = new Inbox("consumer")
      yield* join({ group: "g", topics: ["t"], handle: got.handle })
      yield* got.count(15)
      const offsets = got.records.map((r: DeliveredRecord) => Number(r.offset))
      assert.strictEqual(offsets[0], 10, "the 10 oldest were dropped")
      assert.deepStrictEqual(valuesOf(got.records), Array.from({ length: 15 }, (_, i) => `v${i + 10}`))
    }).pipe(Effect.provide(MemoryBroker.layer({ partitions: 1, retainRecordsPerPartition: 10 }))))

  it.effect("refuses to consume no topic", () =>
    Effect.gen(function*() {
      const broker = yield* Broker
      const error = yield* broker.consume({ group: "g", topics: [], handle: () => Effect.void }).pipe(Effect.flip)
      assert.strictEqual(error.reason, "Rejected")
    }).pipe(Effect.provide(MemoryBroker.layer())))
})
