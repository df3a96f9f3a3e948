/**
 * Saga benchmark, side by side with DBOS Transact (`@dbos-inc/dbos-sdk`, durable workflows on
 * PostgreSQL) in one run, alternating rounds, at concurrency 1 and 50: throughput and p50/p99
 * latency from start to finished.
 *
 * - ours: a saga with a local step and a remote step (a command to another service through the
 *   broker and its reply, then the two-phase commit), coordinator and participant in this process,
 *   each with its own PostgreSQL schema; once on the in-process broker (one persisted `MemoryBroker`
 *   shared by both) and once on Kafka (two consumer groups).
 * - DBOS: a workflow with two durable steps and a durable wait for a message from another process
 *   (bench/dbos/Workflows.ts); the workflow runs here, the remote side in a child process
 *   (bench/dbos/Responder.ts) that alone listens on the queue, its system tables in a fresh schema.
 */
import { DBOS } from "@dbos-inc/dbos-sdk"
import { Cause, Context, Effect, Layer, Redacted, Schema } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as KafkaBroker from "../src/kafka/KafkaBroker.ts"
import * as MemoryBroker from "../src/memory/MemoryBroker.ts"
import * as Replies from "../src/messaging/Replies.ts"
import * as MinosConfig from "../src/config/MinosConfig.ts"
import * as Router from "../src/router/Router.ts"
import * as Microservice from "../src/runtime/Microservice.ts"
import * as Saga from "../src/saga/Saga.ts"
import { SagaManager } from "../src/saga/SagaManager.ts"
import * as Postgres from "../src/postgres/Postgres.ts"
import { benchSaga, config as dbosConfig, QUEUE } from "./dbos/Workflows.ts"
import { median, type Metric, percentile, type Result } from "./Harness.ts"
import { startServer } from "./http/HttpBench.ts"
import { tempDir } from "./LmdbBench.ts"
import { pgSettings } from "./StorageBench.ts"

const Ctx = Schema.Struct({ n: Schema.Int })

type BrokerKind = "memory" | "kafka"

/**
 * Each service's PostgreSQL pool: four services and two DBOS processes (10 each) share the server's
 * 100 connections with whatever else runs on the machine.
 */
const POOL = 8

const settingsFor = (name: string, schema: string, broker: BrokerKind): MinosConfig.Settings => ({
  source: { file: "<bench>", format: "effect-minos/1" },
  service: { name, aggregate: undefined, entry: undefined },
  rest: { enabled: false, host: "127.0.0.1", port: 0, bodyLimitBytes: 1_048_576, requestTimeoutMs: 10_000 },
  storage: { backend: "postgres", postgres: { ...pgSettings(schema), maxConnections: POOL } },
  broker: broker === "kafka" ? { backend: "kafka", brokers: ["127.0.0.1:9092"], clientId: name } : { backend: "memory" },
  queue: { batchSize: 500, retry: 2, retryBackoffMs: 50, pollIntervalMs: 200 },
  saga: { storage: { backend: "lmdb", path: join(mkdtempSync(join(tmpdir(), `bench-saga-${name}-`)), "sagas.lmdb") } },
  discovery: { enabled: false, client: "minos", host: "localhost", port: 5567 },
  startup: { retries: 3, retryDelayMs: 500 },
  components: { consumer: true, handlers: true, replies: true, events: true, rest: false, snapshots: true, relay: true, periodic: false, system: false, sagas: true },
  application: {}
})

/** One side of the saga benchmark: runs `count` sagas at `concurrency`; each one's latency in ms. */
export interface Runner {
  readonly name: string
  readonly run: (count: number, concurrency: number) => Effect.Effect<{ readonly latencies: ReadonlyArray<number>; readonly ms: number }, unknown>
}

const timedRuns = (count: number, concurrency: number, one: (i: number) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    const latencies: Array<number> = []
    const started = performance.now()
    yield* Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) =>
      Effect.gen(function*() {
        const t = performance.now()
        yield* one(i)
        latencies.push(performance.now() - t)
      }), { concurrency, discard: true })
    return { latencies, ms: performance.now() - started }
  })

/** Our saga (local step + remote step) with coordinator and participant on `broker`. */
export const ours = (broker: BrokerKind, run: string, schemas: Array<string>) =>
  Effect.gen(function*() {
    const coordinator = `sagabench${broker}${run}`
    const participant = `sagadesk${broker}${run}`
    const topic = `SagaBenchStep${broker}${run}`
    const own = [`bench_saga_${broker}_c_${run}`, `bench_saga_${broker}_p_${run}`] as const
    schemas.push(...own)
    const definition = Saga.make(`BenchSaga${broker}`, { version: 1, context: Ctx })
      .local("Local", (ctx) => Effect.succeed({ n: ctx.n * 2 }))
      .remote("Step", (ctx) => ({ topic, content: { n: ctx.n } }))
      .build
    // the in-process broker: one for both services, persisted like the embedded default
    const shared = broker === "memory"
      ? Layer.succeedContext(yield* Layer.build(MemoryBroker.layer({ persistence: { path: yield* tempDir("bench-saga-broker-") } })))
      : undefined
    const service = <const Hs extends ReadonlyArray<Router.Handler>>(name: string, schema: string, handlers: Hs, sagas: ReadonlyArray<Saga.Definition.Any>) =>
      Microservice.layerWith({ handlers, sagas }).pipe(
        Layer.provideMerge(Layer.fresh(Microservice.layerRequestClient)),
        Layer.provideMerge(Layer.mergeAll(
          Postgres.layerStorage({ ...pgSettings(schema), maxConnections: POOL }),
          Layer.fresh(Replies.layer),
          shared ?? KafkaBroker.layer({ brokers: ["127.0.0.1:9092"], clientId: name })
        )),
        Layer.provideMerge(MinosConfig.layerSettings(settingsFor(name, schema, broker)))
      )
    yield* Layer.build(service(participant, own[1], [Router.command(topic, { payload: Ctx }, () => Effect.void)], []))
    const ctx = yield* Layer.build(service(coordinator, own[0], [], [definition]))
    const manager = Context.get(ctx, SagaManager)
    // the first saga pays for group joins and topic creation
    yield* manager.run(definition, { n: 0 }, { timeout: "60 seconds" })
    return {
      name: broker === "memory" ? "in-process broker" : "Kafka",
      run: (count, concurrency) => timedRuns(count, concurrency, (n) => manager.run(definition, { n }, { timeout: "120 seconds" }))
    } satisfies Runner
  })

/** DBOS: the workflow here, its remote side in a child process, system tables in a fresh schema. */
const dbos = (run: string, schemas: Array<string>) =>
  Effect.gen(function*() {
    const schema = `bench_dbos_${run}`
    schemas.push(schema)
    const s = pgSettings("public")
    const url = `postgresql://${s.user}:${Redacted.value(s.password)}@${s.host}:${s.port}/${s.database}`
    const pollMs = process.env["MINOS_BENCH_DBOS_POLL_MS"] ?? "20"
    const dir = yield* tempDir("bench-dbos-")
    // DBOS creates its schema at launch; the responder launches first, alone
    yield* startServerless(["bench/dbos/Responder.ts", url, schema, pollMs], dir)
    yield* Effect.acquireRelease(
      Effect.promise(async () => {
        DBOS.setConfig(dbosConfig(url, schema, []))
        await DBOS.launch()
        await DBOS.registerQueue(QUEUE, { minPollingIntervalMs: Number(pollMs) })
      }),
      () => Effect.promise(() => DBOS.shutdown({ deregister: true }).catch(() => undefined))
    )
    const one = (n: number) => Effect.promise(async () => (await DBOS.startWorkflow(benchSaga)(n)).getResult())
    yield* one(0)
    return { name: "DBOS", run: (count, concurrency) => timedRuns(count, concurrency, one) } satisfies Runner
  })

/** A child process that prints `ready` (no HTTP port), stopped with the scope. */
const startServerless = (args: ReadonlyArray<string>, dir: string) => startServer("dbos-responder", args, {}, 0, dir, "")

export interface SagaOptions {
  readonly quick: boolean
  readonly kafkaUp: boolean
  readonly withDbos: boolean
  /** PostgreSQL schemas this group creates (the caller drops them at the end). */
  readonly schemas: Array<string>
}

/** Builds every side, then alternates rounds of each at concurrency 1 and 50. */
export const sagaGroup = (o: SagaOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const run = Date.now().toString(36)
    const runners: Array<Runner> = [yield* ours("memory", run, o.schemas)]
    if (o.kafkaUp) runners.push(yield* ours("kafka", run, o.schemas))
    // DBOS that does not start (e.g. no connection slot left) leaves our rows without their peer
    const peer = o.withDbos
      ? yield* dbos(run, o.schemas).pipe(
        Effect.catchCause((cause) => Effect.as(Effect.sync(() => console.error(`  saga: DBOS did not start, no peer rows: ${Cause.pretty(cause).split("\n")[0]}`)), undefined))
      )
      : undefined
    const sides = peer === undefined ? runners : [...runners, peer]
    const rounds = o.quick ? 1 : 3
    const results: Array<Result> = []
    const metrics: Array<Metric> = []
    for (const [concurrency, count] of o.quick ? [[1, 10], [50, 50]] as const : [[1, 30], [50, 200]] as const) {
      const rates = new Map<string, Array<number>>(sides.map((s) => [s.name, []]))
      const latencies = new Map<string, Array<number>>(sides.map((s) => [s.name, []]))
      for (let r = 0; r < rounds; r++) {
        for (const side of sides) {
          const out = yield* side.run(count, concurrency)
          rates.get(side.name)!.push((count * 1000) / out.ms)
          latencies.get(side.name)!.push(...out.latencies)
        }
      }
      const report = (name: string) => ({
        perSec: median(rates.get(name)!),
        p50: percentile(latencies.get(name)!, 50),
        p99: percentile(latencies.get(name)!, 99)
      })
      const base = peer === undefined ? undefined : report(peer.name)
      for (const side of runners) {
        const mine = report(side.name)
        const ratio = base === undefined ? null : Math.round((mine.perSec / base.perSec) * 100) / 100
        // issue #12's own goals for the Kafka saga: p50 < 20 ms at 1, ≥ 200 sagas/s at 50
        const goalRate = side.name === "Kafka" && concurrency === 50 ? 200 : null
        const metRatio = ratio === null ? null : ratio >= 1.0
        const metRate = goalRate === null ? null : mine.perSec >= goalRate
        results.push({
          group: "saga",
          name: `local + remote step, ${side.name}, conc. ${concurrency}`,
          unit: "saga",
          oursPerSec: Math.round(mine.perSec),
          rawPerSec: base === undefined ? null : Math.round(base.perSec),
          peer: base === undefined ? "-" : "DBOS",
          ratio,
          goalRatio: base === undefined ? null : 1.0,
          goalRate,
          met: metRatio === null && metRate === null ? null : (metRatio ?? true) && (metRate ?? true),
          rounds,
          oursSamples: rates.get(side.name)!.map(Math.round),
          rawSamples: peer === undefined ? null : rates.get(peer.name)!.map(Math.round)
        })
        const goalP50 = side.name === "Kafka" && concurrency === 1 ? 20 : null
        metrics.push({
          group: "saga",
          name: `p50 latency, ${side.name}, conc. ${concurrency}`,
          value: Math.round(mine.p50),
          unit: "ms",
          ...(base === undefined ? {} : { peerValue: Math.round(base.p50), peer: "DBOS" }),
          goal: goalP50 === null ? null : `<${goalP50} ms`,
          met: goalP50 === null ? null : mine.p50 < goalP50
        }, {
          group: "saga",
          name: `p99 latency, ${side.name}, conc. ${concurrency}`,
          value: Math.round(mine.p99),
          unit: "ms",
          ...(base === undefined ? {} : { peerValue: Math.round(base.p99), peer: "DBOS" }),
          goal: null,
          met: null
        })
        console.log(`  saga: ${side.name}, conc. ${concurrency}: ${Math.round(mine.perSec)}/s p50 ${Math.round(mine.p50)} ms p99 ${Math.round(mine.p99)} ms${base ? ` (DBOS ${Math.round(base.perSec)}/s p50 ${Math.round(base.p50)} ms p99 ${Math.round(base.p99)} ms)` : ""}`)
      }
    }
    return { results, metrics }
  }))
