/**
 * Gates the suites that need a real PostgreSQL or Kafka. When a service does not answer the suite is
 * skipped, unless MINOS_REQUIRE_SERVICES=1 (CI), where a missing service is a failing test.
 */
import { describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { mkdtempSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { PostgresSettings } from "../../src/config/MinosConfig.ts"
import * as Postgres from "../../src/postgres/Postgres.ts"

export const requireServices = process.env["MINOS_REQUIRE_SERVICES"] === "1"

export const postgres: PostgresSettings = {
  host: process.env["MINOS_TEST_PG_HOST"] ?? "127.0.0.1",
  port: Number(process.env["MINOS_TEST_PG_PORT"] ?? 5432),
  database: process.env["MINOS_TEST_PG_DATABASE"] ?? "minos_test",
  user: process.env["MINOS_TEST_PG_USER"] ?? "minos",
  password: Redacted.make(process.env["MINOS_TEST_PG_PASSWORD"] ?? "min0s"),
  maxConnections: 8,
  connectTimeoutMs: 5_000,
  schema: "public"
}

/** Settings for a fresh, empty schema (each storage suite gets its own). */
export const freshSchema = (prefix = "t"): PostgresSettings => ({
  ...postgres,
  schema: `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
})

export const kafkaBrokers: ReadonlyArray<string> = (process.env["MINOS_TEST_KAFKA_BROKERS"] ?? "127.0.0.1:9092").split(",")

const answers = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(2_000, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

/** The 3-broker cluster of `scripts/kafka.sh cluster up` (failover tests). */
export const clusterBrokers: ReadonlyArray<string> = (process.env["MINOS_TEST_KAFKA_CLUSTER"] ?? "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094").split(",")

const answersAt = (address: string) => {
  const [host, port] = address.split(":")
  return answers(host!, Number(port))
}

const [pgUp, kafkaUp, clusterUp] = await Promise.all([
  answers(postgres.host, postgres.port),
  answersAt(kafkaBrokers[0]!),
  Promise.all(clusterBrokers.map(answersAt)).then((up) => up.every(Boolean))
])

export const postgresAvailable = pgUp
export const kafkaAvailable = kafkaUp
export const clusterAvailable = clusterUp

const gate = (available: boolean, what: string) => (name: string, body: () => void) => {
  if (available) describe(name, body)
  else if (requireServices) {
    describe(name, () => {
      it(`needs ${what}`, () => {
        throw new Error(`${what} is required (MINOS_REQUIRE_SERVICES=1) but does not answer; run \`npm run services:up\``)
      })
    })
  } else describe.skip(`${name} (${what} not answering)`, body)
}

/** `describe` for suites that need the real PostgreSQL. */
export const describePostgres = gate(postgresAvailable, `PostgreSQL at ${postgres.host}:${postgres.port}`)
/** `describe` for suites that need the real Kafka broker. */
export const describeKafka = gate(kafkaAvailable, `Kafka at ${kafkaBrokers.join(",")}`)
/** `describe` for suites that need the 3-broker cluster (`bash scripts/kafka.sh cluster up`). */
export const describeCluster = gate(clusterAvailable && postgresAvailable, `the Kafka cluster at ${clusterBrokers.join(",")} (bash scripts/kafka.sh cluster up) and PostgreSQL`)

/**
 * The PostgreSQL storage bundle in a fresh schema that is dropped when the layer is released.
 */
export const pgStorage = (prefix: string) => {
  const settings = freshSchema(prefix)
  const dropSchema = Layer.effectDiscard(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Effect.addFinalizer(() => sql.unsafe(`DROP SCHEMA IF EXISTS "${settings.schema}" CASCADE`).pipe(Effect.ignore))
  }))
  return Layer.merge(Postgres.layerStorageWith(settings.schema), dropSchema).pipe(Layer.provideMerge(Postgres.layer(settings)))
}

/** Resolved settings for an in-process test service; override what the test needs. */
export const settings = (overrides: {
  readonly name?: string
  readonly storage?: import("../../src/config/MinosConfig.ts").StorageSettings
  readonly broker?: import("../../src/config/MinosConfig.ts").BrokerSettings
  readonly retry?: number
  readonly restPort?: number
  readonly rest?: boolean
}): import("../../src/config/MinosConfig.ts").Settings => ({
  source: { file: "<test>", format: "effect-minos/1" },
  service: { name: overrides.name ?? "svc", aggregate: undefined, entry: undefined },
  rest: { enabled: overrides.rest ?? false, host: "127.0.0.1", port: overrides.restPort ?? 0, bodyLimitBytes: 1_048_576, requestTimeoutMs: 10_000 },
  storage: overrides.storage ?? { backend: "lmdb", path: "", mapSize: 256 * 1024 * 1024 },
  broker: overrides.broker ?? { backend: "memory" },
  queue: { batchSize: 500, retry: overrides.retry ?? 2, retryBackoffMs: 20, pollIntervalMs: 200 },
  saga: { storage: { backend: "lmdb", path: join(mkdtempSync(join(tmpdir(), "saga-")), "sagas.lmdb") } },
  discovery: { enabled: false, client: "minos", host: "localhost", port: 5567 },
  startup: { retries: 3, retryDelayMs: 200 },
  components: { consumer: true, handlers: true, replies: true, events: true, rest: overrides.rest ?? false, snapshots: true, relay: true, periodic: true, system: true, sagas: true },
  application: {}
})
