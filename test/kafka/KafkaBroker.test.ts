import { assert, it, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer } from "effect"
import { Broker, type DeliveredRecord } from "../../src/broker/Broker.ts"
import * as MinosConfig from "../../src/config/MinosConfig.ts"
import * as KafkaBroker from "../../src/kafka/KafkaBroker.ts"
import * as Microservice from "../../src/runtime/Microservice.ts"
import { groupExists } from "../support/Kafka.ts"
import { describeKafka, kafkaBrokers, settings } from "../support/Services.ts"
import { Inbox, join, suite, unique } from "../broker/BrokerSuite.ts"

describeKafka("KafkaBroker (real Kafka)", () => {
  layer(KafkaBroker.layer({ brokers: kafkaBrokers, clientId: "smoke" }), { timeout: 60_000, excludeTestServices: true })((it) => {
    const run = `${process.pid}-${Date.now()}`

    it.effect("creates a topic, publishes with key + headers and reads it back in a group", () =>
      Effect.gen(function*() {
        const broker = yield* Broker
        const topic = `smoke.${run}`
        yield* broker.ensureTopics([topic])
        yield* broker.ensureTopics([topic]) // idempotent
        yield* broker.publish([{ topic, key: "k-1", value: JSON.stringify({ n: 1 }), headers: { id: "m-1", traceparent: "00-abc-def-01" } }])
        const got = yield* Deferred.make<DeliveredRecord>()
        const fiber = yield* Effect.scoped(
          Effect.gen(function*() {
            yield* broker.consume({ group: `smoke-${run}`, topics: [topic], handle: (records) => Deferred.succeed(got, records[0]!) })
            return yield* Deferred.await(got)
          })
        ).pipe(Effect.forkChild)
        const record = yield* Fiber.join(fiber)
        assert.strictEqual(record.topic, topic)
        assert.strictEqual(record.key, "k-1")
        assert.deepStrictEqual(JSON.parse(record.value), { n: 1 })
        assert.deepStrictEqual(record.headers, { id: "m-1", traceparent: "00-abc-def-01" })
      }))

    it.effect("refuses an invalid topic name with a typed error", () =>
      Effect.gen(function*() {
        const broker = yield* Broker
        const error = yield* broker.publish([{ topic: "bad topic!", key: null, value: "x", headers: {} }]).pipe(Effect.flip)
        assert.strictEqual(error.reason, "InvalidTopic")
      }))

    it.effect("answers a ping", () => Effect.flatMap(Broker, (b) => b.ping))

    it.effect("an ephemeral group commits nothing and is gone once its member left", () =>
      Effect.gen(function*() {
        const broker = yield* Broker
        const topic = unique("ephemeral")
        const group = unique("replies")
        yield* broker.publish([{ topic, key: "k", value: "before", headers: {} }])
        const got = new Inbox("ephemeral member")
        const member = yield* join({ group, topics: [topic], handle: got.handle, ephemeral: true, fromBeginning: false })
        yield* broker.publish([{ topic, key: "k", value: "after", headers: {} }])
        yield* got.count(1)
        assert.deepStrictEqual(got.values(), ["after"])
        assert.isTrue(yield* groupExists(kafkaBrokers, group))
        yield* member.leave
        assert.isFalse(yield* groupExists(kafkaBrokers, group), "the group is deleted when its member leaves")
      }))
  })

  it.live("a TLS file that cannot be read fails the start with the key that names it", () =>
    Effect.gen(function*() {
      const config = settings({
        name: "tlsfile",
        broker: { backend: "kafka", brokers: kafkaBrokers, clientId: "tlsfile", tls: { rejectUnauthorized: true, caFile: "/nonexistent/ca.pem" } }
      })
      const error = yield* Layer.build(Microservice.layerBroker.pipe(Layer.provide(MinosConfig.layerSettings(config)))).pipe(Effect.scoped, Effect.flip)
      assert.strictEqual(error._tag, "StartupError")
      assert.include(error.message, "broker.tls.ca_file")
    }))

  suite("KafkaBroker", KafkaBroker.layer({ brokers: kafkaBrokers, clientId: "conformance", partitions: 3 }))
})
