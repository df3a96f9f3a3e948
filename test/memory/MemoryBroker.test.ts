import { afterAll, assert, describe, it } from "@effect/vitest"
import { compatibilityPartitioner } from "@platformatic/kafka"
import { Deferred, Effect, type Scope } from "effect"
import { TestClock } from "effect/testing"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join as joinPath } from "node:path"
import { open } from "lmdb"
import { Broker, type DeliveredRecord } from "../../src/broker/Broker.ts"
import * as MemoryBroker from "../../src/memory/MemoryBroker.ts"
import { Inbox, join, suite, valuesOf } from "../broker/BrokerSuite.ts"

const folders: Array<string> = []
/** A fresh folder for a persistent broker (removed after the file's tests). */
const tempFolder = (): string => {
  const parent = mkdtempSync(joinPath(tmpdir(), "memory-broker-"))
  folders.push(parent)
  return joinPath(parent, "log")
}
afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true })
})

suite("MemoryBroker", MemoryBroker.layer(), { wait: "5 seconds" })
suite("MemoryBroker persistent", MemoryBroker.layer({ persistence: { path: tempFolder() } }), { wait: "5 seconds" })

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
    // the Java client's partitioner, as @platformatic/kafka ships it (what KafkaBroker uses)
    const murmur2 = (key: string) => compatibilityPartitioner(undefined as never, Buffer.from(key, "utf8"))
    const keys = ["", "a", "ab", "abc", "abcd", "abcde", "order-42", "ünïcødé ✓ 日本", "x".repeat(101), "0c8a4b5e-7f7e-4f0c-9a53-1d2b3c4d5e6f"]
    for (const key of keys) {
      for (const n of [1, 2, 3, 7, 12]) {
        assert.strictEqual(MemoryBroker.partitionOf(key, n), murmur2(key) % n, `${JSON.stringify(key)} over ${n}`)
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

  it.effect("caps the redelivery backoff at retryMaxMs and starts it over after a handled batch", () =>
    Effect.gen(function*() {
      const broker = yield* Broker
      const attempts = new Inbox("attempts")
      // "a" fails three times, "b" once: the backoffs are 100, 200, 300 (capped), then 100 again
      const failures = new Map([["a", 3], ["b", 1]])
      yield* join({
        group: "g",
        topics: ["t"],
        maxBatch: 1,
        handle: (batch) =>
          Effect.andThen(
            attempts.handle(batch),
            Effect.suspend(() => {
              const left = failures.get(batch[0]!.value) ?? 0
              failures.set(batch[0]!.value, left - 1)
              return left > 0 ? Effect.fail("not yet") : Effect.void
            })
          )
      })
      yield* broker.publish([{ topic: "t", key: "k", value: "a", headers: {} }, { topic: "t", key: "k", value: "b", headers: {} }])
      yield* attempts.count(1)
      // [backoff, deliveries before it ends, after]: "a" succeeds after the 300 ms one and "b" fails at once
      for (const [delay, before, after] of [[100, 1, 2], [200, 2, 3], [300, 3, 5], [100, 5, 6]] as const) {
        yield* settle
        yield* TestClock.adjust(`${delay - 1} millis`)
        yield* settle
        assert.strictEqual(attempts.records.length, before, `nothing new before the ${delay} ms backoff`)
        yield* TestClock.adjust("1 millis")
        yield* attempts.count(after)
      }
      assert.deepStrictEqual(valuesOf(attempts.records), ["a", "a", "a", "a", "b", "b"])
    }).pipe(Effect.provide(MemoryBroker.layer({ retryInitialMs: 100, retryMaxMs: 300 }))))

  it.effect("deals a topic's partitions only to the members subscribed to it, least loaded first", () =>
    Effect.gen(function*() {
      const broker = yield* Broker
      const a = new Inbox("A (t1)")
      const b = new Inbox("B (t1, t2)")
      yield* join({ group: "g", topics: ["t1"], handle: a.handle })
      yield* join({ group: "g", topics: ["t1", "t2"], handle: b.handle })
      const keys = [0, 1, 2].map((p) => keyOn(p, 3))
      yield* broker.publish(["t1", "t2"].flatMap((topic) => keys.map((key) => ({ topic, key, value: `${topic}/${key}`, headers: {} }))))
      yield* b.count(4)
      yield* a.count(2)
      yield* settle
      // t1 first (by name): partition 0 to A (tie, joined first), 1 to B, 2 to A; then all of t2 to B
      assert.sameMembers(valuesOf(a.records), [`t1/${keys[0]}`, `t1/${keys[2]}`])
      assert.sameMembers(valuesOf(b.records), [`t1/${keys[1]}`, ...keys.map((k) => `t2/${k}`)])
    }).pipe(Effect.provide(MemoryBroker.layer())))

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

/**
 * Runs `body` on a broker opened (a fresh layer: a restart) on the folder of `options`: the
 * consumers `body` joined leave when it ends, then the broker closes (as in a service, where the
 * consumers depend on the broker).
 */
const session = <A, E>(options: MemoryBroker.MemoryOptions, body: Effect.Effect<A, E, Broker | Scope.Scope>) =>
  Effect.scoped(body).pipe(Effect.provide(MemoryBroker.layer(options)))

const publishValues = (topic: string, key: string | null, values: ReadonlyArray<string>) =>
  Effect.flatMap(Broker, (broker) => broker.publish(values.map((value) => ({ topic, key, value, headers: { v: value } }))))

describe("MemoryBroker with persistence", () => {
  it.effect("keeps the published records across a restart: a new group reads them all", () =>
    Effect.gen(function*() {
      const options: MemoryBroker.MemoryOptions = { partitions: 3, persistence: { path: tempFolder() } }
      const sent = Array.from({ length: 12 }, (_, i) => `v${i}`)
      yield* session(options, Effect.gen(function*() {
        yield* publishValues("t", null, sent.slice(0, 6))
        for (const value of sent.slice(6)) yield* publishValues("t", `key-${value}`, [value])
      }))
      const got = new Inbox("after restart")
      yield* session(options, Effect.gen(function*() {
        yield* join({ group: "late", topics: ["t"], handle: got.handle })
        yield* got.count(sent.length)
      }))
      assert.sameMembers(valuesOf(got.records), sent)
      assert.deepStrictEqual(got.records.map((r) => r.headers["v"]), valuesOf(got.records), "headers survive")
      for (const r of got.records.filter((r) => r.value >= "v6")) {
        assert.strictEqual(r.partition, MemoryBroker.partitionOf(r.key!, 3), "a keyed record stays on its key's partition")
      }
      for (const p of [0, 1, 2]) {
        const offsets = got.records.filter((r) => r.partition === p).map((r) => Number(r.offset))
        assert.deepStrictEqual(offsets, offsets.map((_, i) => i), `partition ${p} from offset 0, in order`)
      }
    }))

  it.effect("continues a group from its committed offset after a restart", () =>
    Effect.gen(function*() {
      const options: MemoryBroker.MemoryOptions = { partitions: 1, persistence: { path: tempFolder() } }
      const first = new Inbox("before restart (committed)")
      const stuck = new Inbox("before restart (never finished)")
      yield* session(options, Effect.gen(function*() {
        yield* publishValues("t", "k", ["a", "b", "c", "d", "e"])
        yield* join({
          group: "g",
          topics: ["t"],
          maxBatch: 2,
          handle: (batch) => (batch[0]!.offset === "0" ? first.handle(batch) : Effect.andThen(stuck.handle(batch), Effect.never))
        })
        yield* stuck.count(1)
      }))
      assert.deepStrictEqual(valuesOf(first.records), ["a", "b"])
      assert.deepStrictEqual(valuesOf(stuck.records), ["c", "d"])
      const second = new Inbox("after restart")
      yield* session(options, Effect.gen(function*() {
        yield* join({ group: "g", topics: ["t"], handle: second.handle })
        yield* second.count(3)
        yield* settle
      }))
      assert.deepStrictEqual(valuesOf(second.records), ["c", "d", "e"], "the uncommitted batch comes again, the committed one does not")
      assert.deepStrictEqual(second.records.map((r) => r.offset), ["2", "3", "4"])
      // everything is committed now: a third run delivers nothing old
      const third = new Inbox("third run")
      yield* session(options, Effect.gen(function*() {
        yield* join({ group: "g", topics: ["t"], handle: third.handle })
        yield* publishValues("t", "k", ["f"])
        yield* third.count(1)
        yield* settle
      }))
      assert.deepStrictEqual(valuesOf(third.records), ["f"])
    }))

  it.effect("keeps a fromBeginning: false group's position, so records published while it was away still come", () =>
    Effect.gen(function*() {
      const options: MemoryBroker.MemoryOptions = { partitions: 1, persistence: { path: tempFolder() } }
      yield* session(options, Effect.gen(function*() {
        yield* publishValues("t", "k", ["old"])
        const member = yield* join({ group: "g", topics: ["t"], fromBeginning: false, handle: () => Effect.void })
        yield* member.leave
        yield* publishValues("t", "k", ["while away"])
      }))
      const got = new Inbox("after restart")
      yield* session(options, Effect.gen(function*() {
        yield* join({ group: "g", topics: ["t"], fromBeginning: false, handle: got.handle })
        yield* got.count(1)
        yield* settle
      }))
      assert.deepStrictEqual(valuesOf(got.records), ["while away"])
    }))

  it.effect("continues each partition's offsets after a restart (no overwrite, no duplicate)", () =>
    Effect.gen(function*() {
      const options: MemoryBroker.MemoryOptions = { partitions: 1, persistence: { path: tempFolder() } }
      yield* session(options, publishValues("t", "k", ["a", "b", "c"]))
      yield* session(options, publishValues("t", null, ["d", "e"]))
      const got = new Inbox("reader")
      yield* session(options, Effect.gen(function*() {
        yield* join({ group: "reader", topics: ["t"], handle: got.handle })
        yield* got.count(5)
        yield* settle
      }))
      assert.deepStrictEqual(valuesOf(got.records), ["a", "b", "c", "d", "e"])
      assert.deepStrictEqual(got.records.map((r) => r.offset), ["0", "1", "2", "3", "4"])
    }))

  it.effect("keeps a topic's partition count across restarts", () =>
    Effect.gen(function*() {
      const path = tempFolder()
      yield* session({ partitions: 2, persistence: { path } }, publishValues("t", "some-key", ["a"]))
      const got = new Inbox("reader")
      yield* session({ partitions: 5, persistence: { path } }, Effect.gen(function*() {
        yield* publishValues("t", "some-key", ["b"])
        yield* join({ group: "reader", topics: ["t"], handle: got.handle })
        yield* got.count(2)
      }))
      assert.deepStrictEqual(valuesOf(got.records), ["a", "b"], "the same key lands on the same partition, in order")
      assert.strictEqual(got.records[0]!.partition, MemoryBroker.partitionOf("some-key", 2))
    }))

  it.effect("deletes only records every group committed and older than the retention window", () =>
    Effect.gen(function*() {
      const options: MemoryBroker.MemoryOptions = { partitions: 1, persistence: { path: tempFolder(), retentionMs: 1_000, trimIntervalMs: 100 } }
      const newGroup = (name: string) =>
        Effect.gen(function*() {
          const got = new Inbox(name)
          yield* join({ group: name, topics: ["t"], handle: got.handle })
          return got
        })
      yield* session(options, Effect.gen(function*() {
        yield* publishValues("t", "k", ["r0", "r1", "r2", "r3"]) // at t = 0
        const a = yield* newGroup("a")
        yield* a.count(4)
        // group b commits r0, r1 and never finishes r2, r3
        const stuck = new Inbox("b (stuck)")
        const b = yield* join({
          group: "b",
          topics: ["t"],
          maxBatch: 2,
          handle: (batch) => (batch[0]!.offset === "0" ? Effect.void : Effect.andThen(stuck.handle(batch), Effect.never))
        })
        yield* stuck.count(1)
        yield* TestClock.adjust("500 millis")
        yield* settle
        const young = yield* newGroup("young")
        yield* young.count(4)
        assert.deepStrictEqual(valuesOf(young.records), ["r0", "r1", "r2", "r3"], "nothing deleted inside the window")

        yield* publishValues("t", "k", ["r4"]) // at t = 500
        yield* a.count(5)
        yield* young.count(5)
        yield* TestClock.adjust("700 millis") // t = 1200: r0..r3 are past the window, r4 is not
        yield* settle
        const later = yield* newGroup("later")
        yield* later.count(3)
        yield* settle
        assert.deepStrictEqual(valuesOf(later.records), ["r2", "r3", "r4"], "only below b's commit (2) is deleted")
        assert.strictEqual(later.records[0]!.offset, "2")

        // b leaves and stays away past the window: it is forgotten, and everything old goes
        yield* b.leave
        yield* TestClock.adjust("2 seconds")
        yield* settle
        const last = yield* newGroup("last")
        yield* publishValues("t", "k", ["r5"])
        yield* last.count(1)
        yield* settle
        assert.deepStrictEqual(valuesOf(last.records), ["r5"])
        assert.strictEqual(last.records[0]!.offset, "5")
      }))
      // and the deletions are on disk
      const reopened = new Inbox("after restart")
      yield* session(options, Effect.gen(function*() {
        yield* join({ group: "fresh", topics: ["t"], handle: reopened.handle })
        yield* reopened.count(1)
        yield* settle
      }))
      assert.deepStrictEqual(valuesOf(reopened.records), ["r5"])
    }))

  it.effect("forgets a group that stays away longer than the window, counted from when it left, across restarts", () =>
    Effect.gen(function*() {
      const options: MemoryBroker.MemoryOptions = { partitions: 1, persistence: { path: tempFolder(), retentionMs: 1_000, trimIntervalMs: 100 } }
      yield* session(options, Effect.gen(function*() {
        yield* publishValues("t", "k", ["a"]) // t = 0
        const stuck = new Inbox("g (never commits)")
        yield* join({ group: "g", topics: ["t"], handle: (batch) => Effect.andThen(stuck.handle(batch), Effect.never) })
        yield* stuck.count(1)
      })) // g leaves at t = 0
      yield* TestClock.adjust("500 millis")
      yield* session(options, Effect.gen(function*() {
        yield* publishValues("t", "k", ["b"]) // t = 500
        yield* TestClock.adjust("400 millis")
        yield* settle
      }))
      const before = new Inbox("at t = 900")
      yield* session(options, Effect.gen(function*() {
        yield* join({ group: "before", topics: ["t"], handle: before.handle })
        yield* before.count(2)
        yield* settle
      }))
      assert.deepStrictEqual(valuesOf(before.records), ["a", "b"], "g holds a: it left 900 ms ago")
      const after = new Inbox("at t = 1200")
      yield* session(options, Effect.gen(function*() {
        yield* TestClock.adjust("300 millis")
        yield* settle
        yield* join({ group: "after", topics: ["t"], handle: after.handle })
        yield* after.count(1)
        yield* settle
      }))
      assert.deepStrictEqual(valuesOf(after.records), ["b"], "g is forgotten 1 s after it left, and a with it; b is inside the window")
    }))

  it.effect("keeps the bounded log on disk as it is in memory", () =>
    Effect.gen(function*() {
      const options: MemoryBroker.MemoryOptions = { partitions: 1, retainRecordsPerPartition: 10, persistence: { path: tempFolder() } }
      const sent = Array.from({ length: 25 }, (_, i) => `v${i}`)
      yield* session(options, publishValues("t", null, sent))
      const got = new Inbox("after restart")
      yield* session(options, Effect.gen(function*() {
        yield* join({ group: "g", topics: ["t"], handle: got.handle })
        yield* got.count(15)
        yield* publishValues("t", null, ["v25"])
        yield* got.count(16)
      }))
      assert.deepStrictEqual(valuesOf(got.records), [...sent.slice(10), "v25"])
      assert.strictEqual(got.records[0]!.offset, "10")
      assert.strictEqual(got.records[15]!.offset, "25")
    }))

  it.effect("refuses to load a log with a missing offset, with a typed error naming the gap", () =>
    Effect.gen(function*() {
      const path = tempFolder()
      yield* session({ partitions: 1, persistence: { path } }, publishValues("t", "k", ["a", "b", "c"]))
      // what a torn copy of the folder looks like: the middle record is gone
      const env = open({ path, maxDbs: 8, noSubdir: false })
      yield* Effect.promise(() => env.openDB({ name: "records" }).remove(["t", 0, 1]))
      yield* Effect.promise(() => env.close())
      const error = yield* Effect.flip(session({ partitions: 1, persistence: { path } }, Effect.void))
      assert.strictEqual(error.reason, "Unknown")
      assert.include(error.message, "t[0] misses offset 1")
      assert.isFalse(error.isRetryable)
    }))

  it.effect("refuses a second broker on the same folder, and fails with Unavailable once closed", () =>
    Effect.gen(function*() {
      const path = tempFolder()
      const broker = yield* session({ persistence: { path } }, Effect.gen(function*() {
        const second = yield* Effect.flip(Effect.provide(Effect.asVoid(Broker), MemoryBroker.layer({ persistence: { path } })))
        assert.strictEqual(second.reason, "Rejected")
        return yield* Broker
      }))
      const error = yield* Effect.flip(broker.publish([{ topic: "t", key: null, value: "late", headers: {} }]))
      assert.strictEqual(error.reason, "Unavailable")
      assert.isTrue(error.isRetryable)
    }))
})
