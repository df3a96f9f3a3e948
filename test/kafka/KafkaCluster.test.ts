/**
 * KafkaBroker on the 3-broker cluster of `scripts/kafka.sh cluster` (replication factor 3,
 * min.insync.replicas 2), with brokers SIGKILLed under load:
 *
 * - topics the service creates get the configured partitions and replication factor;
 * - start-up succeeds with the first listed broker down;
 * - a consumer group keeps consuming through the kill of a partition leader;
 * - the outbox relay under load (concurrent commands on PostgreSQL storage) while the leader of a
 *   busy partition is killed and restarted: every acknowledged command's event is in Kafka (read
 *   back with a plain consumer), at least once and in per-key order. It prints the figures.
 *
 * Every test that kills a node starts it again, and each begins by bringing the whole cluster up.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Ref, Result, Schedule, Schema } from "effect"
import { Broker, type OutgoingRecord } from "../../src/broker/Broker.ts"
import * as Message from "../../src/broker/Message.ts"
import * as Repository from "../../src/command/Repository.ts"
import * as MinosConfig from "../../src/config/MinosConfig.ts"
import * as Aggregate from "../../src/domain/Aggregate.ts"
import * as KafkaBroker from "../../src/kafka/KafkaBroker.ts"
import * as OutboxRelay from "../../src/messaging/OutboxRelay.ts"
import { Outbox } from "../../src/queue/Outbox.ts"
import * as Microservice from "../../src/runtime/Microservice.ts"
import { Inbox, join, unique } from "../broker/BrokerSuite.ts"
import { clusterUp, describeTopic, killNode, leaderOf, readTopic, startNode } from "../support/Kafka.ts"
import { clusterBrokers, describeCluster, pgStorage, settings } from "../support/Services.ts"

const TIMEOUT = 300_000

const kafka = (clientId: string, extra: Partial<KafkaBroker.KafkaOptions> = {}) =>
  KafkaBroker.layer({ brokers: clusterBrokers, clientId, ...extra })

/** Publishes `records`, publishing again what a failure did not acknowledge, until all are (bounded). */
const publishAll = (records: ReadonlyArray<OutgoingRecord>) =>
  Effect.gen(function*() {
    const broker = yield* Broker
    let pending = records
    yield* Effect.suspend(() => broker.publish(pending)).pipe(
      Effect.tapError((e) =>
        Effect.sync(() => {
          const acked = new Set(e.acknowledged ?? [])
          pending = pending.filter((_, i) => !acked.has(i))
        })
      ),
      Effect.retry({ schedule: Schedule.spaced("200 millis"), times: 300 })
    )
  })

/** A tally per aggregate whose events go to a topic of this run, keyed by the aggregate id. */
const tally = (topic: string) =>
  Aggregate.make({
    name: "Tally",
    state: Schema.Struct({ value: Schema.Int }),
    events: Schema.TaggedStruct("Counted", { by: Schema.Int }) as unknown as Schema.Codec<{ readonly _tag: "Counted"; readonly by: number }, unknown>,
    initialState: { value: 0 },
    exists: (s) => s.value > 0,
    evolve: (state, event) => ({ value: state.value + event.by }),
    decide: (command: { readonly by: number }) => Result.succeed([{ _tag: "Counted" as const, by: command.by }]),
    publications: (event) => [{ topic, content: { by: event.by } }]
  })

describeCluster("KafkaBroker on a 3-broker cluster", () => {
  describe("topics and start-up", () => {
    it.live("creates topics with the configured partitions and replication factor, else the broker's defaults", () =>
      Effect.gen(function*() {
        yield* clusterUp
        const configured = unique("partitions")
        const defaulted = unique("defaults")
        yield* Effect.flatMap(Broker, (b) => b.ensureTopics([configured])).pipe(Effect.provide(kafka("partitions", { partitions: 5, replicationFactor: 2 })))
        yield* Effect.flatMap(Broker, (b) => b.ensureTopics([defaulted])).pipe(Effect.provide(kafka("defaults")))
        assert.deepStrictEqual(yield* describeTopic(clusterBrokers, configured), { partitions: 5, replicas: 2 })
        // the cluster's num.partitions=3, default.replication.factor=3
        assert.deepStrictEqual(yield* describeTopic(clusterBrokers, defaulted), { partitions: 3, replicas: 3 })
      }), TIMEOUT)

    it.live("starts with the first listed broker down, and serves through the others", () =>
      Effect.gen(function*() {
        yield* clusterUp
        yield* killNode(1)
        yield* Effect.gen(function*() {
          const name = `first-down-${Date.now().toString(36)}`
          const config = settings({ name, broker: { backend: "kafka", brokers: clusterBrokers, clientId: name } })
          const topic = unique("first-down")
          yield* Effect.gen(function*() {
            const broker = yield* Broker
            yield* broker.ping
            yield* broker.publish([{ topic, key: "k", value: "v", headers: {} }])
            const got = new Inbox("consumer")
            yield* join({ group: unique("g"), topics: [topic], handle: got.handle })
            yield* got.count(1)
            assert.strictEqual(got.records[0]!.value, "v")
          }).pipe(Effect.provide(Microservice.layerBroker.pipe(Layer.provide(MinosConfig.layerSettings(config)))), Effect.scoped)
        }).pipe(Effect.ensuring(startNode(1)))
      }), TIMEOUT)
  })

  describe("failover", () => {
    it.live("a consumer group keeps consuming through the kill of a partition leader", () =>
      Effect.gen(function*() {
        yield* clusterUp
        const topic = unique("group-failover")
        const group = unique("g")
        const broker = yield* Broker
        yield* broker.ensureTopics([topic])
        const a = new Inbox("member A", Duration.seconds(120))
        const b = new Inbox("member B", Duration.seconds(120))
        yield* join({ group, topics: [topic], handle: a.handle, maxBatch: 50 }, "60 seconds")
        yield* join({ group, topics: [topic], handle: b.handle, maxBatch: 50 }, "60 seconds")
        const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`)
        const total = 3_000
        const records = Array.from({ length: total }, (_, i): OutgoingRecord => ({ topic, key: keys[i % keys.length]!, value: `${keys[i % keys.length]}:${Math.floor(i / keys.length)}`, headers: {} }))
        const victim = yield* leaderOf(clusterBrokers, topic, 0)
        const producer = yield* Effect.gen(function*() {
          for (let i = 0; i < total; i += 100) {
            yield* publishAll(records.slice(i, i + 100))
            yield* Effect.sleep("20 millis")
          }
        }).pipe(Effect.forkChild)
        const seen = () => new Set([...a.values(), ...b.values()])
        yield* a.until("a third of the records", () => seen().size >= total / 3)
        yield* killNode(victim)
        yield* a.until("two thirds of the records, with a broker down", () => seen().size >= (2 * total) / 3)
        yield* startNode(victim)
        yield* Fiber.join(producer)
        yield* a.until(`all ${total} records in A ∪ B`, () => seen().size === total)
        const all = [...a.records, ...b.records]
        // per key, the first time each record came is in the order it was published
        for (const key of keys) {
          const order: Array<number> = []
          const firsts = new Set<string>()
          for (const r of all.filter((r) => r.key === key).sort((x, y) => (x.partition - y.partition) || Number(BigInt(x.offset) - BigInt(y.offset)))) {
            if (firsts.has(r.value)) continue
            firsts.add(r.value)
            order.push(Number(r.value.split(":")[1]))
          }
          assert.deepStrictEqual(order, Array.from({ length: total / keys.length }, (_, i) => i), `order of ${key}`)
        }
        console.log(`consumer group through a broker kill: ${total} published, ${all.length} handled, ${all.length - total} again`)
      }).pipe(Effect.provide(kafka("group-failover")), Effect.scoped), TIMEOUT)

    it.live("relay under load: the leader of a busy partition is SIGKILLed and restarted, no acknowledged event is lost", () =>
      Effect.gen(function*() {
        yield* clusterUp
        const topic = unique("relay-failover")
        const Tally = tally(topic)
        const broker = yield* Broker
        yield* broker.ensureTopics([topic])
        const victim = yield* leaderOf(clusterBrokers, topic, 0)
        const outbox = yield* Outbox
        const repo = yield* Repository.make(Tally)
        // the relay's broker, counting the publishes that failed and what they still acknowledged
        const failures = { publishes: 0, acknowledged: 0 }
        const counted = Broker.of({
          ...broker,
          publish: (records) =>
            broker.publish(records).pipe(Effect.tapError((e) =>
              Effect.sync(() => {
                failures.publishes++
                failures.acknowledged += e.acknowledged?.length ?? 0
              })
            ))
        })
        yield* Layer.build(OutboxRelay.layer({ batchSize: 500, pollIntervalMs: 100 }).pipe(Layer.provide(Layer.succeed(Broker, counted))))

        // 8 writers, each with its own 5 aggregates, commands one after the other: 3,000 commands
        const writers = 8
        const perWriter = 375
        const acked = yield* Ref.make(0)
        const ids = Array.from({ length: writers * 5 }, () => crypto.randomUUID())
        const versions = new Map<string, number>()
        const load = Effect.forEach(Array.from({ length: writers }, (_, w) => w), (w) =>
          Effect.gen(function*() {
            for (let i = 0; i < perWriter; i++) {
              const id = ids[w * 5 + (i % 5)]!
              const handled = yield* repo.handle(id, { by: 1 })
              versions.set(id, handled.version)
              yield* Ref.update(acked, (n) => n + 1)
            }
          }), { concurrency: writers, discard: true })
        const loading = yield* Effect.forkChild(load)
        const reached = (n: number) =>
          Ref.get(acked).pipe(Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (x) => x >= n }))
        yield* reached(1_000)
        yield* killNode(victim)
        yield* reached(2_000)
        yield* startNode(victim)
        yield* Fiber.join(loading)
        const committed = yield* Ref.get(acked)
        // the relay catches up once the partition has a leader again
        yield* outbox.pending.pipe(
          Effect.repeat({ schedule: Schedule.spaced("250 millis"), until: (n) => n === 0 }),
          Effect.timeoutOrElse({ duration: "180 seconds", orElse: () => Effect.die(new Error("the outbox did not drain within 180 s")) })
        )

        const expected = new Set<string>()
        for (const [id, version] of versions) for (let v = 1; v <= version; v++) expected.add(`${id}:${v}`)
        assert.strictEqual(expected.size, committed)
        const identity = (value: string) => {
          const decoded = Message.decode(value)
          if (decoded._tag === "Failure") return undefined
          const content = decoded.value.payload.content as { uuid: string; version: number }
          return `${content.uuid}:${content.version}`
        }
        const records = yield* readTopic(clusterBrokers, topic, (rs) => new Set(rs.map((r) => identity(r.value))).size >= expected.size, "90 seconds")
        const found = new Set(records.map((r) => identity(r.value)).filter((x): x is string => x !== undefined))
        const published = [...expected].filter((x) => found.has(x)).length
        const lost = committed - published
        const duplicates = records.length - found.size
        console.log(
          `relay failover (leader of partition 0 = node ${victim} killed and restarted): acked ${committed}, published ${published}, ` +
            `duplicates ${duplicates}, lost ${lost}; ${failures.publishes} failed publishes (${failures.acknowledged} of their records acknowledged)`
        )
        assert.strictEqual(lost, 0, `acknowledged events missing from Kafka: ${[...expected].filter((x) => !found.has(x)).slice(0, 10).join(", ")}`)
        // per key, in partition order, the first copies come in version order
        for (const id of ids) {
          const mine = records.filter((r) => r.key === id).sort((x, y) => Number(x.offset - y.offset))
          assert.strictEqual(new Set(mine.map((r) => r.partition)).size, 1, `${id} stays on one partition`)
          const firsts: Array<number> = []
          const seen = new Set<string>()
          for (const r of mine) {
            const x = identity(r.value)!
            if (seen.has(x)) continue
            seen.add(x)
            firsts.push(Number(x.split(":")[1]))
          }
          assert.deepStrictEqual(firsts, Array.from({ length: versions.get(id) ?? 0 }, (_, i) => i + 1), `versions of ${id} in order`)
        }
      }).pipe(Effect.provide(Layer.merge(kafka("relay-failover"), pgStorage("failover"))), Effect.scoped), TIMEOUT)
  })
})
