import { assert, it, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { Broker, type DeliveredRecord } from "../../src/broker/Broker.ts"
import * as KafkaBroker from "../../src/kafka/KafkaBroker.ts"
import { describeKafka, kafkaBrokers } from "../support/Services.ts"
import { suite } from "../broker/BrokerSuite.ts"

describeKafka("KafkaBroker (real Kafka)", () => {
  layer(KafkaBroker.layer({ brokers: kafkaBrokers, clientId: "smoke" }), { timeout: 60_000 })((it) => {
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
  })

  suite("KafkaBroker", KafkaBroker.layer({ brokers: kafkaBrokers, clientId: "conformance", partitions: 3 }))
})
