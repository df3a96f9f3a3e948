/**
 * `npm run bench [filter]`: side-by-side benchmarks, printed as a table and written to
 * bench/results/latest.json. Suites whose service does not answer are skipped with a note.
 *
 * Groups: `postgres` (event store on PostgreSQL), `lmdb` (event store on LMDB), `relay` (outbox →
 * broker) and `consumer` (broker → inbox → handler). The filter matches `group: name` substrings.
 * PostgreSQL schemas, LMDB temp dirs and Kafka topics created by a run are removed at its end.
 */
import { Effect, Layer } from "effect"
import { connect } from "node:net"
import * as os from "node:os"
import * as Lmdb from "../src/lmdb/Lmdb.ts"
import { type Case, printTable, type Result, runCase, writeResults } from "./Harness.ts"
import { sagaCases, type SagaResult } from "./SagaBench.ts"
import { lmdbGroup, tempDir } from "./LmdbBench.ts"
import { kafkaBroker, kafkaBrokers, lmdbClaim, messagingCases, pgClaim, type RawKafka, rawKafka } from "./MessagingBench.ts"
import { dropSchemas, postgresCases, postgresLayer } from "./StorageBench.ts"
import { projectionCases } from "./ProjectionBench.ts"

const filter = process.argv[2]
const selected = (c: Case) => filter === undefined || `${c.group}: ${c.name}`.includes(filter)
const answers = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect({ host, port })
    s.setTimeout(1500, () => (s.destroy(), resolve(false)))
    s.once("connect", () => (s.destroy(), resolve(true)))
    s.once("error", () => resolve(false))
  })

const runAll = (cases: ReadonlyArray<Case>) =>
  Effect.gen(function*() {
    const out: Array<Result> = []
    for (const c of cases) {
      if (!selected(c)) continue
      const started = performance.now()
      const r = yield* runCase(c)
      const secs = ((performance.now() - started) / 1000).toFixed(1)
      console.log(`  ${c.group}: ${c.name}: ${r.oursPerSec}/s${r.ratio === null ? "" : ` (raw ${r.rawPerSec}/s, ×${r.ratio})`} [${secs} s]`)
      out.push(r)
    }
    return out
  })

const runId = Date.now().toString(36)

const program = Effect.gen(function*() {
  const results: Array<Result> = []
  const skipped: Array<string> = []
  const schemas: Array<string> = []
  yield* Effect.addFinalizer(() => dropSchemas(schemas))
  const [pgUp, kafkaUp] = yield* Effect.promise(() => {
    const [host, port] = kafkaBrokers[0]!.split(":")
    return Promise.all([answers("127.0.0.1", 5432), answers(host!, Number(port ?? 9092))])
  })

  // the event store on PostgreSQL
  if (pgUp) {
    const schema = `bench_${runId}`
    schemas.push(schema)
    results.push(...(yield* Effect.scoped(Effect.gen(function*() {
      const cases = yield* postgresCases(schema)
      return yield* runAll(cases)
    }).pipe(Effect.provide(postgresLayer(schema))))))
  } else skipped.push("postgres, relay/consumer on postgres (nothing on 127.0.0.1:5432)")

  // the event store on LMDB
  results.push(...(yield* lmdbGroup(runAll)))

  // relay and consumer, on both storage backends
  if (!kafkaUp) skipped.push(`relay → Kafka and consumer (nothing on ${kafkaBrokers[0]}); only the in-process relay ran`)
  results.push(...(yield* Effect.scoped(Effect.gen(function*() {
    const raw: RawKafka | undefined = kafkaUp ? yield* rawKafka(runId) : undefined
    const kafka = kafkaUp ? yield* kafkaBroker(runId) : undefined
    const cases: Array<Case> = []
    if (pgUp) {
      const schema = `bench_msg_${runId}`
      schemas.push(schema)
      const storage = yield* Layer.build(postgresLayer(schema))
      const claim = kafkaUp ? yield* pgClaim(schema) : undefined
      cases.push(...(yield* messagingCases("postgres", storage, raw, kafka, claim)))
    }
    const dir = yield* tempDir("bench-lmdb-msg-")
    const storage = yield* Layer.build(Lmdb.layer({ path: dir }))
    const claim = kafkaUp ? yield* lmdbClaim(yield* tempDir("bench-lmdb-claim-")) : undefined
    cases.push(...(yield* messagingCases("lmdb", storage, raw, kafka, claim)))
    // relay cases first, then the consumers
    const order = ["relay", "consumer"]
    return yield* runAll([...cases].sort((a, b) => order.indexOf(a.group) - order.indexOf(b.group)))
  }))))

  if (filter === undefined || "projection".startsWith(filter) || filter.startsWith("projection")) results.push(...(yield* Effect.scoped(Effect.flatMap(projectionCases(pgUp ? (schemas.push(`bench_proj_${runId}`), `bench_proj_${runId}`) : undefined), runAll))))

  // sagas: no raw baseline, so throughput and latency on their own
  const sagas: Array<SagaResult> = []
  if (pgUp && kafkaUp && (filter === undefined || "saga".includes(filter) || filter.startsWith("saga"))) sagas.push(...(yield* sagaCases()))
  else skipped.push("saga (needs PostgreSQL and Kafka, or another filter was given)")

  console.log()
  printTable(results)
  for (const r of sagas) console.log(`saga: one remote step over Kafka, concurrency ${r.concurrency}: ${r.perSec} sagas/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms (${r.sagas} sagas)`)
  if (skipped.length > 0) console.log(`\nskipped: ${skipped.join("; ")}`)
  writeResults(results, { sagas, skipped, machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? "?", memoryGb: Math.round(os.totalmem() / 2 ** 30) } })
})

Effect.runPromise(Effect.scoped(program)).catch((e) => {
  console.error(e)
  process.exit(1)
})
