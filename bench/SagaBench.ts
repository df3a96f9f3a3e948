/**
 * Saga benchmark: sagas with one remote step over real Kafka (coordinator and participant in one
 * process, each with its own PostgreSQL schema, two Kafka consumer groups), at concurrency 1 and 50:
 * throughput and p50/p99 latency from start to finished (including the two-phase commit).
 */
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import pg from "pg"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as KafkaBroker from "../src/kafka/KafkaBroker.ts"
import * as Replies from "../src/messaging/Replies.ts"
import * as RequestClient from "../src/messaging/RequestClient.ts"
import * as MinosConfig from "../src/config/MinosConfig.ts"
import * as Router from "../src/router/Router.ts"
import * as Microservice from "../src/runtime/Microservice.ts"
import * as Saga from "../src/saga/Saga.ts"
import { SagaManager } from "../src/saga/SagaManager.ts"
import * as Postgres from "../src/postgres/Postgres.ts"
import { pgSettings } from "./StorageBench.ts"

export interface SagaResult {
  readonly name: string
  readonly concurrency: number
  readonly sagas: number
  readonly perSec: number
  readonly p50Ms: number
  readonly p99Ms: number
}

const Ctx = Schema.Struct({ n: Schema.Int })

const settingsFor = (name: string, schema: string): MinosConfig.Settings => ({
  source: { file: "<bench>", format: "effect-minos/1" },
  service: { name, aggregate: undefined, entry: undefined },
  rest: { enabled: false, host: "127.0.0.1", port: 0, bodyLimitBytes: 1_048_576, requestTimeoutMs: 10_000 },
  storage: { backend: "postgres", postgres: { ...pgSettings(schema), maxConnections: 16 } },
  broker: { backend: "kafka", brokers: ["127.0.0.1:9092"], clientId: name },
  queue: { batchSize: 500, retry: 2, retryBackoffMs: 50, pollIntervalMs: 200 },
  saga: { storage: { backend: "lmdb", path: join(mkdtempSync(join(tmpdir(), `bench-saga-${name}-`)), "sagas.lmdb") } },
  discovery: { enabled: false, client: "minos", host: "localhost", port: 5567 },
  startup: { retries: 3, retryDelayMs: 500 },
  components: { consumer: true, handlers: true, replies: true, events: true, rest: false, snapshots: true, relay: true, periodic: false, system: false, sagas: true },
  application: {}
})

const percentile = (xs: ReadonlyArray<number>, p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0
}

/** Runs the saga benchmark; `run` names the per-run service names (fresh Kafka groups and topics). */
export const sagaCases = Effect.fn("SagaBench")(function*() {
  const run = Date.now().toString(36)
  const coordinator = `sagabench${run}`
  const participant = `sagadesk${run}`
  const topic = `SagaBenchStep${run}`
  const schemas = [`bench_saga_c_${run}`, `bench_saga_p_${run}`]
  const definition = Saga.make("BenchSaga", { version: 1, context: Ctx })
    .remote("Step", (ctx) => ({ topic, content: { n: ctx.n } }))
    .build
  const service = <const Hs extends ReadonlyArray<Router.Handler>>(name: string, schema: string, handlers: Hs, sagas: ReadonlyArray<Saga.Definition.Any>) =>
    Microservice.layerWith({ handlers, sagas }).pipe(
      Layer.provideMerge(Layer.fresh(Microservice.layerRequestClient)),
      Layer.provideMerge(Layer.mergeAll(
        Postgres.layerStorage(pgSettings(schema)),
        Layer.fresh(Replies.layer),
        KafkaBroker.layer({ brokers: ["127.0.0.1:9092"], clientId: name })
      )),
      Layer.provideMerge(MinosConfig.layerSettings(settingsFor(name, schema)))
    )
  const results: Array<SagaResult> = []
  yield* Effect.scoped(Effect.gen(function*() {
    yield* Layer.build(service(participant, schemas[1]!, [Router.command(topic, { payload: Ctx }, () => Effect.void)], []))
    const ctx = yield* Layer.build(service(coordinator, schemas[0]!, [], [definition]))
    const manager = Context.get(ctx, SagaManager)
    // warm-up: the first saga pays for group joins and topic creation
    yield* manager.run(definition, { n: 0 }, { timeout: "60 seconds" })
    for (const [concurrency, count] of [[1, 40], [50, 400]] as const) {
      const latencies: Array<number> = []
      const started = performance.now()
      yield* Effect.forEach(Array.from({ length: count }, (_, i) => i), (n) =>
        Effect.gen(function*() {
          const t = performance.now()
          yield* manager.run(definition, { n }, { timeout: "120 seconds" })
          latencies.push(performance.now() - t)
        }), { concurrency, discard: true })
      const elapsed = (performance.now() - started) / 1000
      results.push({ name: "saga with one remote step over Kafka (PostgreSQL stores)", concurrency, sagas: count, perSec: Math.round(count / elapsed), p50Ms: Math.round(percentile(latencies, 50)), p99Ms: Math.round(percentile(latencies, 99)) })
      console.log(`  saga: concurrency ${concurrency}: ${results[results.length - 1]!.perSec}/s, p50 ${results[results.length - 1]!.p50Ms} ms, p99 ${results[results.length - 1]!.p99Ms} ms`)
    }
  }))
  const pool = new pg.Pool({ host: "127.0.0.1", user: "minos", password: Redacted.value(pgSettings("x").password), database: "minos_test" })
  for (const s of schemas) yield* Effect.promise(() => pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`))
  yield* Effect.promise(() => pool.end())
  return results
})
