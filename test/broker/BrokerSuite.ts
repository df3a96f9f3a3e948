/**
 * The conformance suite of the `Broker` port: every backend (`MemoryBroker`, `KafkaBroker`) runs these
 * same tests, so code written against the port behaves the same on both.
 *
 * The tests run on the real clock (a Kafka group join takes seconds) and never sleep a fixed time to
 * decide an outcome: they wait for a condition, bounded by `wait`, and fail with what they saw.
 * Topic and group names carry a random suffix because a Kafka server is shared and keeps its data.
 */
import { assert, layer } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, type Layer, Scope } from "effect"
import { Broker, type BrokerError, type ConsumeOptions, type DeliveredRecord } from "../../src/broker/Broker.ts"

export interface SuiteOptions {
  /** Longest wait for records to arrive or a group to settle (default 30 s). */
  readonly wait?: Duration.Input
  /** Timeout of each test in ms (default 120 s). */
  readonly timeout?: number
}

/** A topic or group name that no earlier run used. */
export const unique = (what: string): string =>
  `conformance.${what}.${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`

/** What one consumer received, with a way to wait for a condition on it. */
export class Inbox {
  readonly batches: Array<ReadonlyArray<DeliveredRecord>> = []
  readonly records: Array<DeliveredRecord> = []
  private readonly listeners = new Set<() => void>()

  readonly label: string
  private readonly wait: Duration.Duration

  constructor(label: string, wait: Duration.Duration = Duration.seconds(30)) {
    this.label = label
    this.wait = wait
  }

  /** A `handle` that records every batch. */
  readonly handle = (batch: ReadonlyArray<DeliveredRecord>): Effect.Effect<void> =>
    Effect.sync(() => {
      this.push(batch)
    })

  push(batch: ReadonlyArray<DeliveredRecord>): void {
    this.batches.push(batch)
    for (const r of batch) this.records.push(r)
    for (const listener of [...this.listeners]) listener()
  }

  values(): Array<string> {
    return this.records.map((r) => r.value)
  }

  /** Waits until `done(records)` holds, or fails the test after `wait` naming `what`. */
  until(what: string, done: (records: ReadonlyArray<DeliveredRecord>) => boolean, wait?: Duration.Duration): Effect.Effect<void> {
    const limit = wait ?? this.wait
    return Effect.callback<void>((resume) => {
      const check = () => {
        if (done(this.records)) {
          this.listeners.delete(check)
          resume(Effect.void)
        }
      }
      this.listeners.add(check)
      check()
      return Effect.sync(() => {
        this.listeners.delete(check)
      })
    }).pipe(
      Effect.timeoutOrElse({
        duration: limit,
        orElse: () =>
          Effect.die(
            new Error(
              `${this.label}: timed out after ${Duration.format(limit)} waiting for ${what}; ` +
                `got ${this.records.length} records: ${JSON.stringify(this.values().slice(0, 40))}`
            )
          )
      })
    )
  }

  /** Waits until `count` records arrived (at least). */
  count(count: number): Effect.Effect<void> {
    return this.until(`${count} records`, (records) => records.length >= count)
  }
}

/**
 * Joins a group in a scope of its own; `leave` closes it (the member leaves the group). The member
 * leaves at the latest when the test's scope closes.
 */
export const join = Effect.fn("BrokerSuite.join")(function*(options: ConsumeOptions, wait: Duration.Input = "30 seconds") {
  const broker = yield* Broker
  const scope = yield* Scope.make()
  const leave = Scope.close(scope, Exit.void)
  yield* Effect.addFinalizer(() => leave)
  yield* broker.consume(options).pipe(
    Scope.provide(scope),
    Effect.timeoutOrElse({
      duration: wait,
      orElse: () => Effect.die(new Error(`joining group ${options.group} took longer than ${Duration.format(Duration.fromInputUnsafe(wait))}`))
    }),
    Effect.onError(() => leave)
  )
  return { leave }
})

export const valuesOf = (records: ReadonlyArray<DeliveredRecord>): Array<string> => records.map((r) => r.value)

/**
 * Registers the conformance tests of the `Broker` port for one backend.
 */
export const suite = (name: string, brokerLayer: Layer.Layer<Broker, BrokerError>, options: SuiteOptions = {}): void => {
  const wait = Duration.fromInputUnsafe(options.wait ?? "30 seconds")
  const timeout = options.timeout ?? 120_000
  const inbox = (label: string) => new Inbox(label, wait)
  const member = (consumeOptions: ConsumeOptions) => join(consumeOptions, wait)

  layer(brokerLayer, { excludeTestServices: true, timeout })(`${name} (Broker conformance)`, (it) => {
    it.effect("answers a ping", () => Effect.flatMap(Broker, (broker) => broker.ping), timeout)

    it.effect("refuses an invalid topic name with InvalidTopic on publish, ensureTopics and consume", () =>
      Effect.gen(function*() {
        const broker = yield* Broker
        for (const bad of ["bad topic!", "", ".", "..", "a/b", "x".repeat(250)]) {
          const published = yield* broker.publish([{ topic: bad, key: null, value: "x", headers: {} }]).pipe(Effect.flip)
          assert.strictEqual(published.reason, "InvalidTopic", `publish to ${JSON.stringify(bad)}`)
          const ensured = yield* broker.ensureTopics([unique("ok"), bad]).pipe(Effect.flip)
          assert.strictEqual(ensured.reason, "InvalidTopic", `ensureTopics ${JSON.stringify(bad)}`)
        }
        const consumed = yield* Effect.scoped(
          broker.consume({ group: unique("g"), topics: ["bad topic!"], handle: () => Effect.void })
        ).pipe(Effect.flip)
        assert.strictEqual(consumed.reason, "InvalidTopic")
      }), timeout)

    it.effect("round-trips a record with key and headers", () =>
      Effect.gen(function*() {
        const broker = yield* Broker
        const topic = unique("roundtrip")
        yield* broker.ensureTopics([topic])
        yield* broker.ensureTopics([topic]) // idempotent
        const before = Date.now()
        yield* broker.publish([{ topic, key: "k-1", value: JSON.stringify({ n: 1 }), headers: { id: "m-1", traceparent: "00-abc-def-01" } }])
        const got = inbox("consumer")
        yield* member({ group: unique("g"), topics: [topic], handle: got.handle })
        yield* got.count(1)
        const record = got.records[0]!
        assert.strictEqual(record.topic, topic)
        assert.strictEqual(record.key, "k-1")
        assert.deepStrictEqual(JSON.parse(record.value), { n: 1 })
        assert.deepStrictEqual(record.headers, { id: "m-1", traceparent: "00-abc-def-01" })
        assert.isTrue(Number.isInteger(record.partition) && record.partition >= 0, `partition ${record.partition}`)
        assert.match(record.offset, /^\d+$/)
        assert.isTrue(record.timestamp >= before - 60_000 && record.timestamp <= Date.now() + 60_000, `timestamp ${record.timestamp}`)
        // a record without key and without headers
        yield* broker.publish([{ topic, key: null, value: "plain", headers: {} }])
        yield* got.count(2)
        assert.strictEqual(got.records[1]!.key, null)
        assert.strictEqual(got.records[1]!.value, "plain")
        assert.deepStrictEqual(got.records[1]!.headers, {})
      }), timeout)

    it.effect("delivers every record to each of two groups", () =>
      Effect.gen(function*() {
        const broker = yield* Broker
        const topic = unique("groups")
        const sent = Array.from({ length: 30 }, (_, i) => `v${i}`)
        yield* broker.publish(sent.map((value, i) => ({ topic, key: i % 4 === 0 ? null : `key-${i % 7}`, value, headers: {} })))
        const a = inbox("group A")
        const b = inbox("group B")
        yield* member({ group: unique("ga"), topics: [topic], handle: a.handle })
        yield* member({ group: unique("gb"), topics: [topic], handle: b.handle })
        yield* a.until("all 30 values", (rs) => new Set(valuesOf(rs)).size === sent.length)
        yield* b.until("all 30 values", (rs) => new Set(valuesOf(rs)).size === sent.length)
        assert.sameMembers(valuesOf(a.records), sent)
        assert.sameMembers(valuesOf(b.records), sent)
      }), timeout)

    it.effect("splits the partitions between two members of a group, each record handled once", () =>
      Effect.gen(function*() {
        const broker = yield* Broker
        const topic = unique("split")
        const group = unique("g")
        yield* broker.ensureTopics([topic])
        const a = inbox("member A")
        const b = inbox("member B")
        yield* member({ group, topics: [topic], handle: a.handle })
        yield* member({ group, topics: [topic], handle: b.handle })
        // Wait until the group settled on both members: probe with keyless records (round robin over
        // the partitions) until both handled some. On Kafka the first member rejoins asynchronously.
        const bothActive = Effect.gen(function*() {
          for (let round = 0;; round++) {
            yield* broker.publish(Array.from({ length: 6 }, (_, i) => ({ topic, key: null, value: `probe-${round}-${i}`, headers: {} })))
            const settled = yield* Effect.all([a.count(1), b.count(1)], { concurrency: 2 }).pipe(
              Effect.timeoutOption("1 second")
            )
            if (settled._tag === "Some") return
          }
        }).pipe(
          Effect.timeoutOrElse({
            duration: wait,
            orElse: () => Effect.die(new Error(`the group never gave partitions to both members (A got ${a.records.length}, B got ${b.records.length})`))
          })
        )
        yield* bothActive
        const sent = Array.from({ length: 200 }, (_, i) => `main-${i}`)
        yield* broker.publish(sent.map((value, i) => ({ topic, key: `key-${i % 20}`, value, headers: {} })))
        const main = (rs: ReadonlyArray<DeliveredRecord>) => rs.filter((r) => r.value.startsWith("main-"))
        const union = () => [...main(a.records), ...main(b.records)]
        yield* Effect.race(
          a.until("all 200 main values in A ∪ B", () => new Set(valuesOf(union())).size === sent.length),
          b.until("all 200 main values in A ∪ B", () => new Set(valuesOf(union())).size === sent.length)
        )
        const all = valuesOf(union())
        assert.strictEqual(all.length, sent.length, "no record was handled twice")
        assert.sameMembers(all, sent)
        const partitionsA = new Set(main(a.records).map((r) => r.partition))
        const partitionsB = new Set(main(b.records).map((r) => r.partition))
        assert.isTrue(partitionsA.size > 0 && partitionsB.size > 0, `both members handle partitions (A ${[...partitionsA]}, B ${[...partitionsB]})`)
        for (const p of partitionsA) assert.isFalse(partitionsB.has(p), `partition ${p} went to both members`)
      }), timeout)

    it.effect("keeps each key's records in order, in batches of one partition of at most maxBatch", () =>
      Effect.gen(function*() {
        const broker = yield* Broker
        const topic = unique("order")
        const keys = ["alpha", "bravo", "charlie", "delta", "echo"]
        const sent = Array.from({ length: 200 }, (_, i) => ({ key: keys[i % keys.length]!, seq: Math.floor(i / keys.length) }))
        // several publish calls, so order must hold across calls too
        for (let start = 0; start < sent.length; start += 25) {
          yield* broker.publish(sent.slice(start, start + 25).map(({ key, seq }) => ({ topic, key, value: `${key}:${seq}`, headers: {} })))
        }
        const got = inbox("consumer")
        yield* member({ group: unique("g"), topics: [topic], handle: got.handle, maxBatch: 7, concurrency: 3 })
        yield* got.count(sent.length)
        for (const batch of got.batches) {
          assert.isTrue(batch.length >= 1 && batch.length <= 7, `batch of ${batch.length} exceeds maxBatch 7`)
          assert.strictEqual(new Set(batch.map((r) => `${r.topic}/${r.partition}`)).size, 1, "a batch holds one partition")
          for (let i = 1; i < batch.length; i++) {
            assert.isTrue(BigInt(batch[i]!.offset) > BigInt(batch[i - 1]!.offset), "offsets ascend within a batch")
          }
        }
        for (const key of keys) {
          const mine = got.records.filter((r) => r.key === key)
          assert.deepStrictEqual(
            mine.map((r) => r.value),
            Array.from({ length: 40 }, (_, seq) => `${key}:${seq}`),
            `records of ${key} in order`
          )
          assert.strictEqual(new Set(mine.map((r) => r.partition)).size, 1, `${key} stays on one partition`)
        }
        assert.strictEqual(got.records.length, sent.length, "nothing handled twice")
      }), timeout)

    it.effect("delivers a batch again after handle fails or dies", () =>
      Effect.gen(function*() {
        const broker = yield* Broker
        const topic = unique("retry")
        const sent = ["r0", "r1", "r2", "r3", "r4"]
        yield* broker.publish(sent.map((value) => ({ topic, key: "one-key", value, headers: {} })))
        const attempts: Array<ReadonlyArray<string>> = []
        const got = inbox("consumer")
        yield* member({
          group: unique("g"),
          topics: [topic],
          handle: (batch) =>
            Effect.suspend(() => {
              attempts.push(valuesOf(batch))
              if (attempts.length === 1) return Effect.fail("first attempt fails")
              if (attempts.length === 2) return Effect.die(new Error("second attempt dies"))
              return got.handle(batch)
            })
        })
        yield* got.until("all 5 values after two failed attempts", (rs) => new Set(valuesOf(rs)).size === sent.length)
        assert.isAtLeast(attempts.length, 3)
        assert.strictEqual(attempts[0]![0], "r0", "the first attempt starts at the first record")
        assert.strictEqual(attempts[1]![0], "r0", "the failed batch comes again")
        assert.strictEqual(attempts[2]![0], "r0", "the dead batch comes again")
        assert.deepStrictEqual(valuesOf(got.records), sent, "handled once each, in order, after the retries")
      }), timeout)

    it.effect("hands the records of a member that left mid-batch to the next member", () =>
      Effect.gen(function*() {
        const broker = yield* Broker
        const topic = unique("handover")
        const group = unique("g")
        const sent = ["h0", "h1", "h2", "h3"]
        yield* broker.publish(sent.map((value) => ({ topic, key: "one-key", value, headers: {} })))
        // member A takes the batch and never finishes it
        const stuck = inbox("member A (stuck)")
        const a = yield* member({
          group,
          topics: [topic],
          handle: (batch) => Effect.andThen(stuck.handle(batch), Effect.never)
        })
        yield* stuck.count(1)
        // member B joins (on Kafka its join completes only once A is gone), then A's scope closes
        const b = inbox("member B")
        const joining = yield* Effect.forkChild(member({ group, topics: [topic], handle: b.handle }))
        yield* a.leave
        yield* b.until("the records A never finished", (rs) => new Set(valuesOf(rs)).size === sent.length)
        yield* Fiber.join(joining)
        assert.deepStrictEqual(valuesOf(b.records).slice(0, sent.length), sent, "B gets A's records from the first one")
        assert.includeMembers(valuesOf(b.records), valuesOf(stuck.records), "everything A saw comes again")
      }), timeout)

    it.effect("an ephemeral group starts at the end, retries a failed batch, and keeps no offsets once left", () =>
      Effect.gen(function*() {
        const broker = yield* Broker
        const topic = unique("ephemeral")
        const group = unique("replies")
        yield* broker.publish([{ topic, key: "one-key", value: "old", headers: {} }])
        let failures = 0
        const got = inbox("ephemeral member")
        const first = yield* member({
          group,
          topics: [topic],
          ephemeral: true,
          fromBeginning: false,
          handle: (batch) => (failures++ === 0 ? Effect.fail("first attempt fails") : got.handle(batch))
        })
        yield* broker.publish([{ topic, key: "one-key", value: "a", headers: {} }])
        yield* got.count(1)
        assert.deepStrictEqual(valuesOf(got.records), ["a"], "from the end, the failed batch again")
        yield* first.leave
        // published while nobody is in the group: a member of the same name starts at the end again
        yield* broker.publish([{ topic, key: "one-key", value: "b", headers: {} }])
        const again = inbox("next ephemeral member")
        yield* member({ group, topics: [topic], ephemeral: true, fromBeginning: false, handle: again.handle })
        yield* broker.publish([{ topic, key: "one-key", value: "c", headers: {} }])
        yield* again.count(1)
        assert.deepStrictEqual(valuesOf(again.records), ["c"])
      }), timeout)

    it.effect("starts a new group at the end of the log when fromBeginning is false", () =>
      Effect.gen(function*() {
        const broker = yield* Broker
        const topic = unique("latest")
        yield* broker.publish(["old-0", "old-1", "old-2"].map((value) => ({ topic, key: "one-key", value, headers: {} })))
        const got = inbox("consumer")
        yield* member({ group: unique("g"), topics: [topic], handle: got.handle, fromBeginning: false })
        // published right after consume returned: must not be skipped
        yield* broker.publish(["new-0", "new-1"].map((value) => ({ topic, key: "one-key", value, headers: {} })))
        yield* got.count(2)
        // same key, same partition: an old record would have come before the new ones
        assert.deepStrictEqual(valuesOf(got.records), ["new-0", "new-1"])
        // a group that starts from the beginning (the default) sees all of them
        const all = inbox("from beginning")
        yield* member({ group: unique("g"), topics: [topic], handle: all.handle })
        yield* all.count(5)
        assert.deepStrictEqual(valuesOf(all.records), ["old-0", "old-1", "old-2", "new-0", "new-1"])
      }), timeout)
  })
}
