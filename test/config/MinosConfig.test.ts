import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as MinosConfig from "../../src/config/MinosConfig.ts"

const seed = "test/fixtures/minos-v1-config.yml"
const dir = mkdtempSync(join(tmpdir(), "minos-config-"))
const file = (name: string, text: string): string => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}
const failure = (path: string, env: Record<string, string> = {}) =>
  MinosConfig.load(path, { env }).pipe(Effect.flip)

describe("MinosConfig", () => {
  describe("minos v1 (the seed file)", () => {
    it.effect("loads the seed's config.yml unchanged", () =>
      Effect.gen(function*() {
        const c = yield* MinosConfig.load(seed, { env: {} })
        assert.strictEqual(c.source.format, "minos-v1")
        assert.strictEqual(c.service.name, "exam")
        assert.strictEqual(c.service.aggregate, "Exam")
        assert.strictEqual(c.rest.host, "0.0.0.0")
        assert.strictEqual(c.rest.port, 8082)
        assert.deepStrictEqual(c.broker, { backend: "kafka", brokers: ["localhost:9092"], clientId: "exam" })
        assert.strictEqual(c.storage.backend, "postgres")
        if (c.storage.backend !== "postgres") return
        assert.strictEqual(c.storage.postgres.database, "exam_db")
        assert.strictEqual(c.storage.postgres.user, "minos")
        assert.strictEqual(Redacted.value(c.storage.postgres.password), "min0s")
        assert.strictEqual(c.queue.batchSize, 1000)
        assert.strictEqual(c.queue.retry, 2)
        assert.deepStrictEqual(c.saga.storage, { backend: "lmdb", path: "./exam.lmdb" })
        assert.isFalse(c.discovery.enabled)
        assert.isTrue(c.components.relay)
        assert.strictEqual(c.application["queries.service"], "src.queries.ExamQueryService")
      }))

    it.effect("the example copy is the same file", () =>
      Effect.gen(function*() {
        const a = yield* MinosConfig.load(seed, { env: {} })
        const b = yield* MinosConfig.load("examples/exam/minos-v1.yml", { env: {} })
        assert.deepStrictEqual(MinosConfig.toJson(a), { ...(MinosConfig.toJson(b) as object), source: { file: seed, format: "minos-v1" } })
      }))

    it.effect("applies minos v1's fixed environment names, converting types", () =>
      Effect.gen(function*() {
        const c = yield* MinosConfig.load(seed, {
          env: {
            MINOS_SERVICE_NAME: "exam2",
            MINOS_REST_PORT: "9000",
            MINOS_REST_HOST: "127.0.0.1",
            MINOS_BROKER_HOST: "kafka",
            MINOS_BROKER_PORT: "19092",
            MINOS_REPOSITORY_HOST: "db",
            MINOS_SNAPSHOT_HOST: "db",
            MINOS_BROKER_QUEUE_HOST: "db",
            MINOS_REPOSITORY_PASSWORD: "s3cret",
            MINOS_SAGA_STORAGE_PATH: "/tmp/x.lmdb"
          }
        })
        assert.strictEqual(c.service.name, "exam2")
        assert.strictEqual(c.rest.port, 9000)
        assert.strictEqual(c.rest.host, "127.0.0.1")
        assert.deepStrictEqual(c.broker, { backend: "kafka", brokers: ["kafka:19092"], clientId: "exam2" })
        assert.strictEqual(c.storage.backend === "postgres" && c.storage.postgres.host, "db")
        assert.strictEqual(c.storage.backend === "postgres" && Redacted.value(c.storage.postgres.password), "s3cret")
        assert.deepStrictEqual(c.saga.storage, { backend: "lmdb", path: "/tmp/x.lmdb" })
      }))

    it.effect("an unknown minos class path names its key", () =>
      Effect.gen(function*() {
        const path = file("unknown-class.yml", "service:\n  name: exam\n  injections:\n    repository: minos.common.PostgreSqlRepositry\nrepository:\n  database: exam_db\n")
        const e = yield* failure(path)
        assert.strictEqual(e.reason, "UnknownClassPath")
        assert.strictEqual(e.path, "service.injections.repository")
        assert.include(e.message, path)
        assert.include(e.message, "minos.common.PostgreSqlRepositry")
      }))

    it.effect("refuses storage split over two databases (one transaction needs one)", () =>
      Effect.gen(function*() {
        const path = file("split.yml", "service:\n  name: exam\n  injections:\n    repository: minos.common.PostgreSqlRepository\nrepository:\n  database: a\nsnapshot:\n  database: b\n")
        const e = yield* failure(path)
        assert.strictEqual(e.reason, "Inconsistent")
        assert.strictEqual(e.path, "snapshot.database")
      }))
  })

  describe("effect-minos/1", () => {
    it.effect("loads the top-level config.yml on the embedded backends", () =>
      Effect.gen(function*() {
        const c = yield* MinosConfig.load("config.yml", { env: {} })
        assert.strictEqual(c.source.format, "effect-minos/1")
        assert.strictEqual(c.service.name, "exam")
        assert.strictEqual(c.rest.port, 8082)
        assert.deepStrictEqual(c.storage, { backend: "lmdb", path: "./data/exam", mapSize: MinosConfig.defaults.lmdb.mapSize })
        assert.deepStrictEqual(c.broker, { backend: "memory" })
      }))

    it.effect("switches to PostgreSQL + Kafka per component through the environment", () =>
      Effect.gen(function*() {
        const c = yield* MinosConfig.load("config.yml", {
          env: { MINOS_STORAGE_BACKEND: "postgres", MINOS_BROKER_BACKEND: "kafka", MINOS_STORAGE_POSTGRES_MAX_CONNECTIONS: "3" }
        })
        assert.strictEqual(c.storage.backend, "postgres")
        assert.strictEqual(c.storage.backend === "postgres" && c.storage.postgres.maxConnections, 3)
        assert.deepStrictEqual(c.broker, { backend: "kafka", brokers: ["localhost:9092"], clientId: "exam" })
        assert.strictEqual(c.saga.storage.backend, "lmdb")
      }))

    it.effect("accepts v1 names where the meaning carries over, and lists for broker addresses", () =>
      Effect.gen(function*() {
        const c = yield* MinosConfig.load("config.yml", {
          env: { MINOS_STORAGE_BACKEND: "postgres", MINOS_REPOSITORY_HOST: "pg", MINOS_BROKER_BACKEND: "kafka", MINOS_BROKER_BROKERS: "a:1, b:2" }
        })
        assert.strictEqual(c.storage.backend === "postgres" && c.storage.postgres.host, "pg")
        assert.deepStrictEqual(c.broker.backend === "kafka" && c.broker.brokers, ["a:1", "b:2"])
      }))

    it.effect("reads the Kafka topic defaults, TLS and SASL, and the PostgreSQL TLS; secrets stay redacted", () =>
      Effect.gen(function*() {
        const path = file("kafka-security.yml", [
          "version: effect-minos/1",
          "service: { name: secure }",
          "storage:",
          "  backend: postgres",
          "  postgres: { database: db, tls: { ca_file: /etc/ssl/pg-ca.pem, server_name: pg.internal } }",
          "broker:",
          "  backend: kafka",
          "  brokers: [k1:9093, k2:9093]",
          "  partitions: 12",
          "  replication_factor: 3",
          "  tls: { ca_file: /etc/ssl/ca.pem, cert_file: /etc/ssl/me.pem, key_file: /etc/ssl/me.key, reject_unauthorized: false }",
          "  sasl: { mechanism: SCRAM-SHA-512, username: svc, password: from-file }",
          ""
        ].join("\n"))
        const c = yield* MinosConfig.load(path, { env: { MINOS_BROKER_SASL_PASSWORD: "s3cret", MINOS_BROKER_PARTITIONS: "6", MINOS_BROKER_BROKERS: "k1:9093,k2:9093,k3:9093" } })
        assert.strictEqual(c.broker.backend, "kafka")
        if (c.broker.backend !== "kafka") return
        assert.deepStrictEqual(c.broker.brokers, ["k1:9093", "k2:9093", "k3:9093"])
        assert.strictEqual(c.broker.partitions, 6)
        assert.strictEqual(c.broker.replicationFactor, 3)
        assert.deepStrictEqual(c.broker.tls, { rejectUnauthorized: false, caFile: "/etc/ssl/ca.pem", certFile: "/etc/ssl/me.pem", keyFile: "/etc/ssl/me.key" })
        assert.strictEqual(c.broker.sasl?.mechanism, "SCRAM-SHA-512")
        assert.strictEqual(c.broker.sasl?.username, "svc")
        assert.strictEqual(Redacted.value(c.broker.sasl!.password), "s3cret")
        assert.deepStrictEqual(c.storage.backend === "postgres" && c.storage.postgres.tls, { rejectUnauthorized: true, caFile: "/etc/ssl/pg-ca.pem", serverName: "pg.internal" })
        const json = JSON.stringify(MinosConfig.toJson(c))
        assert.notInclude(json, "s3cret")
        assert.include(json, "<redacted>")
        // without the keys: the broker's own topic defaults, no TLS, no SASL
        const plain = yield* MinosConfig.load(file("kafka-plain.yml", "version: effect-minos/1\nservice: { name: plain }\nbroker: { backend: kafka }\n"), { env: {} })
        assert.deepStrictEqual(plain.broker, { backend: "kafka", brokers: ["localhost:9092"], clientId: "plain" })
        const bad = yield* failure(file("kafka-bad.yml", "version: effect-minos/1\nservice: { name: bad }\nbroker: { backend: kafka, sasl: { mechanism: GSSAPI, username: u, password: p } }\n"))
        assert.strictEqual(bad.path, "broker.sasl.mechanism")
      }))

    it.effect("env beats file for booleans too", () =>
      Effect.gen(function*() {
        const c = yield* MinosConfig.load("config.yml", { env: { MINOS_DISCOVERY_ENABLED: "true", MINOS_REST_ENABLED: "no" } })
        assert.isTrue(c.discovery.enabled)
        assert.isFalse(c.rest.enabled)
      }))
  })

  describe("bad input", () => {
    it.effect("a missing file", () =>
      Effect.gen(function*() {
        const e = yield* failure(join(dir, "absent.yml"))
        assert.strictEqual(e.reason, "FileNotFound")
        assert.include(e.message, "absent.yml")
      }))

    it.effect("a YAML syntax error gives the line", () =>
      Effect.gen(function*() {
        const e = yield* failure(file("syntax.yml", "service:\n  name: exam\n rest: [\n"))
        assert.strictEqual(e.reason, "YamlSyntax")
        assert.match(e.message, /line \d+/)
      }))

    it.effect("a wrong type names the key path and what was expected", () =>
      Effect.gen(function*() {
        const e = yield* failure(file("type.yml", "service:\n  name: exam\nrest:\n  port: eighty\n"))
        assert.strictEqual(e.reason, "InvalidValue")
        assert.strictEqual(e.path, "rest.port")
        assert.include(e.message, "Expected")
      }))

    it.effect("an out-of-range port", () =>
      Effect.gen(function*() {
        const e = yield* failure(file("range.yml", "version: effect-minos/1\nservice:\n  name: exam\nrest:\n  port: 70000\n"))
        assert.strictEqual(e.path, "rest.port")
        assert.include(e.message, "65535")
      }))

    it.effect("an unknown backend", () =>
      Effect.gen(function*() {
        const e = yield* failure(file("backend.yml", "version: effect-minos/1\nservice:\n  name: exam\nstorage:\n  backend: mongodb\n"))
        assert.strictEqual(e.reason, "InvalidValue")
        assert.strictEqual(e.path, "storage.backend")
        assert.include(e.message, "\"lmdb\" | \"postgres\"")
      }))

    it.effect("a bad environment value names the variable", () =>
      Effect.gen(function*() {
        const e = yield* failure("config.yml", { MINOS_REST_PORT: "http" })
        assert.strictEqual(e.path, "rest.port")
        assert.include(e.message, "MINOS_REST_PORT")
      }))

    it.effect("a missing required key", () =>
      Effect.gen(function*() {
        const e = yield* failure(file("missing.yml", "rest:\n  port: 80\n"))
        assert.strictEqual(e.path, "service")
        assert.include(e.message, "Missing key")
      }))

    it.effect("postgres storage without its block", () =>
      Effect.gen(function*() {
        const e = yield* failure(file("pg.yml", "version: effect-minos/1\nservice:\n  name: exam\nstorage:\n  backend: postgres\n"))
        assert.strictEqual(e.path, "storage.postgres")
      }))

    it.effect("an unsupported version", () =>
      Effect.gen(function*() {
        const e = yield* failure(file("v3.yml", "version: 3\nname: exam\n"))
        assert.strictEqual(e.reason, "UnsupportedFormat")
        assert.strictEqual(e.path, "version")
      }))

    it.effect("a scalar document", () =>
      Effect.gen(function*() {
        const e = yield* failure(file("scalar.yml", "just text\n"))
        assert.strictEqual(e.reason, "InvalidValue")
      }))
  })

  it.effect("toJson redacts secrets", () =>
    Effect.gen(function*() {
      const c = yield* MinosConfig.load(seed, { env: {} })
      const text = JSON.stringify(MinosConfig.toJson(c))
      assert.notInclude(text, "min0s")
      assert.include(text, "<redacted>")
    }))
})
