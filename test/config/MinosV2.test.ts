import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { readFileSync } from "node:fs"
import * as MinosConfig from "../../src/config/MinosConfig.ts"

const quickstart = "test/fixtures/minos-v2-quickstart.yml"
const template = "test/fixtures/minos-v2-template.yml"

/** The template with one line replaced (a key's value), parsed in memory. */
const variant = (from: string, to: string, env: Record<string, string> = {}) => {
  const text = readFileSync(template, "utf8")
  assert.include(text, from)
  return MinosConfig.parse("variant.yml", text.replace(from, to), { env })
}

describe("MinosConfig: minos v2", () => {
  it.effect("loads minos's README QuickStart config unchanged", () =>
    Effect.gen(function*() {
      const c = yield* MinosConfig.load(quickstart, { env: {} })
      assert.strictEqual(c.source.format, "minos-v2")
      assert.strictEqual(c.service.name, "foo")
      assert.strictEqual(c.service.aggregate, "Foo")
      assert.strictEqual(c.storage.backend, "postgres")
      if (c.storage.backend !== "postgres") return
      assert.strictEqual(c.storage.postgres.database, "foo_db")
      assert.strictEqual(c.storage.postgres.host, "localhost")
      assert.strictEqual(Redacted.value(c.storage.postgres.password), "min0s")
      assert.deepStrictEqual(c.saga.storage, { backend: "lmdb", path: "./foo.lmdb" })
      assert.deepStrictEqual(c.broker, { backend: "kafka", brokers: ["localhost:9092"], clientId: "foo" })
      assert.strictEqual(c.rest.port, 4545)
      assert.strictEqual(c.rest.host, "0.0.0.0")
      assert.isTrue(c.rest.enabled)
      for (const part of ["consumer", "handlers", "replies", "events", "relay", "periodic", "rest", "system", "snapshots", "sagas"] as const) {
        assert.isTrue(c.components[part], part)
      }
      assert.isFalse(c.discovery.enabled)
      assert.strictEqual(c.application["services.4"], "main.FooCommandService")
      assert.strictEqual(c.application["aggregate.entities.0"], "main.Foo")
    }))

  it.effect("loads a CLI-template style file: queue settings, discovery, GraphQL router, named query database", () =>
    Effect.gen(function*() {
      const c = yield* MinosConfig.load(template, { env: {} })
      assert.strictEqual(c.service.name, "exam")
      assert.strictEqual(c.service.aggregate, "Exam")
      assert.deepStrictEqual(c.broker, { backend: "kafka", brokers: ["kafka:9092"], clientId: "exam" })
      assert.strictEqual(c.queue.batchSize, 500)
      assert.strictEqual(c.queue.retry, 3)
      assert.deepStrictEqual(c.discovery, { enabled: true, client: "minos", host: "discovery", port: 5567 })
      assert.strictEqual(c.storage.backend === "postgres" && c.storage.postgres.database, "exam_db")
      assert.strictEqual(c.application["serializer"], "minos.networks.AvroSerializer")
      assert.strictEqual(c.application["aggregate.client"], "src.aggregates.ExamAggregate")
    }))

  it.effect("applies MINOS_ + path overrides, converting types, also inside named databases", () =>
    Effect.gen(function*() {
      const c = yield* MinosConfig.load(template, {
        env: {
          MINOS_NAME: "exam2",
          MINOS_DATABASES_DEFAULT_HOST: "db",
          MINOS_DATABASES_DEFAULT_PORT: "6543",
          MINOS_DATABASES_DEFAULT_PASSWORD: "s3cret",
          MINOS_DATABASES_SAGA_PATH: "/var/lib/exam-sagas.lmdb",
          MINOS_INTERFACES_BROKER_COMMON_HOST: "kafka-1",
          MINOS_INTERFACES_HTTP_CONNECTOR_PORT: "9000",
          MINOS_DISCOVERY_PORT: "6000"
        }
      })
      assert.strictEqual(c.service.name, "exam2")
      assert.isTrue(c.storage.backend === "postgres")
      if (c.storage.backend !== "postgres") return
      assert.strictEqual(c.storage.postgres.host, "db")
      assert.strictEqual(c.storage.postgres.port, 6543)
      assert.strictEqual(Redacted.value(c.storage.postgres.password), "s3cret")
      assert.deepStrictEqual(c.saga.storage, { backend: "lmdb", path: "/var/lib/exam-sagas.lmdb" })
      assert.deepStrictEqual(c.broker, { backend: "kafka", brokers: ["kafka-1:9092"], clientId: "exam2" })
      assert.strictEqual(c.rest.port, 9000)
      assert.strictEqual(c.discovery.port, 6000)
    }))

  it.effect("a bad override names the variable and the key", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(MinosConfig.load(template, { env: { MINOS_DATABASES_DEFAULT_PORT: "x" } }))
      assert.strictEqual(e.reason, "InvalidValue")
      assert.strictEqual(e.path, "databases.default.port")
      assert.include(e.message, "MINOS_DATABASES_DEFAULT_PORT")
    }))

  it.effect("in-memory classes select the embedded backends", () =>
    Effect.gen(function*() {
      const text = [
        "version: 2",
        "name: bar",
        "databases:",
        "  default:",
        "    client: minos.plugins.lmdb.LmdbDatabaseClient",
        "    path: ./data/bar",
        "aggregate:",
        "  repositories:",
        "    delta: minos.aggregate.InMemoryDeltaRepository",
        "    snapshot: minos.aggregate.InMemorySnapshotRepository",
        "interfaces:",
        "  broker:",
        "    port: minos.networks.BrokerPort",
        "    publisher:",
        "      client: minos.networks.InMemoryBrokerPublisher",
        "    subscriber:",
        "      client: minos.networks.InMemoryBrokerSubscriber",
        "  http:",
        "    port: minos.networks.HttpPort",
        "    connector:",
        "      port: 8090"
      ].join("\n")
      const c = yield* MinosConfig.parse("embedded.yml", text, { env: {} })
      assert.deepStrictEqual(c.storage, { backend: "lmdb", path: "./data/bar", mapSize: MinosConfig.defaults.lmdb.mapSize })
      assert.deepStrictEqual(c.broker, { backend: "memory" })
      // the saga store is a file of its own, not the storage folder
      assert.deepStrictEqual(c.saga.storage, { backend: "lmdb", path: "./data/bar-sagas.lmdb" })
      assert.isTrue(c.components.consumer)
      assert.isFalse(c.components.periodic)
    }))

  it.effect("an unknown class path is a ConfigError naming the key", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(variant("client: minos.plugins.kafka.KafkaBrokerPublisher", "client: minos.plugins.kafka.KafkaBrokerPublsher"))
      assert.strictEqual(e.reason, "UnknownClassPath")
      assert.strictEqual(e.path, "interfaces.broker.publisher.client")
      assert.include(e.message, "minos.plugins.kafka.KafkaBrokerPublsher")
    }))

  it.effect("a known class under the wrong key is refused", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(variant("manager: minos.saga.SagaManager", "manager: minos.networks.BrokerRouter"))
      assert.strictEqual(e.reason, "InvalidValue")
      assert.strictEqual(e.path, "saga.manager")
      assert.include(e.message, "not a saga manager")
    }))

  it.effect("events and the broker queues on two databases are refused (one transaction needs one)", () =>
    Effect.gen(function*() {
      const text = readFileSync(template, "utf8").replace("databases:\n", "databases:\n  broker:\n    client: minos.plugins.aiopg.AiopgDatabaseClient\n    database: other_db\n")
      const e = yield* Effect.flip(MinosConfig.parse("split.yml", text, { env: {} }))
      assert.strictEqual(e.reason, "Inconsistent")
      assert.strictEqual(e.path, "databases.broker")
    }))

  it.effect("a PostgreSQL database without `database` names the key", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(variant("    database: exam_db\n", ""))
      assert.strictEqual(e.reason, "InvalidValue")
      assert.strictEqual(e.path, "databases.default.database")
    }))

  it.effect("a wrong type names the key path", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(variant("records: 500", "records: many"))
      assert.strictEqual(e.reason, "InvalidValue")
      assert.strictEqual(e.path, "interfaces.broker.common.queue.records")
    }))
})
