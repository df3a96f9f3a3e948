/**
 * `npm run bench [-- --quick] [filter]`: side-by-side benchmarks, printed as one table (every row
 * with its goal and ✓/✗) and written to bench/results/latest.json (plus a timestamped copy).
 * Suites whose service does not answer are skipped with a note.
 *
 * Groups, in run order: `postgres` (event store on PostgreSQL vs raw pg), `emmett` (the command path
 * vs Emmett and vs a raw one-row commit loop), `stream` (stream length, with and without a
 * snapshot), `snapshots` (1k vs 100k snapshots of one type, no statistics), `lmdb` (event store on
 * LMDB vs raw lmdb), `projection` (read-model follower and rebuild), `relay` and `consumer` (outbox → broker → inbox), `http` (the exam service vs a
 * bare node:http server, both backends, and its RSS), `saga` (local + remote step vs DBOS).
 *
 * The filter is a group name prefix (`http`, `http LMDB`) or a `group: name` substring of a case
 * (`"lmdb: append"`); several, comma-separated, run each (`emmett,http`). `--quick` runs every group once with small sizes (a smoke test of the bench,
 * not a measurement). PostgreSQL schemas, LMDB temp dirs, child processes and Kafka topics created
 * by a run are removed at its end.
 */
import "./QuickSizes.ts"
import { Cause, Effect, Layer } from "effect"
import { connect } from "node:net"
import * as os from "node:os"
import * as Lmdb from "../src/lmdb/Lmdb.ts"
import * as Postgres from "../src/postgres/Postgres.ts"
import { emmettCases, POOL as EMMETT_POOL } from "./EmmettBench.ts"
import { type Case, type Metric, printTable, type Result, runCase, writeResults } from "./Harness.ts"
import { httpGroup } from "./http/HttpBench.ts"
import { sagaGroup } from "./SagaBench.ts"
import { lmdbGroup, tempDir } from "./LmdbBench.ts"
import { kafkaBroker, kafkaBrokers, lmdbClaim, messagingCases, pgClaim, type RawKafka, rawKafka } from "./MessagingBench.ts"
import { projectionCases } from "./ProjectionBench.ts"
import { dropSchemas, pgSettings, postgresCases, postgresLayer } from "./StorageBench.ts"
import { snapshotScalingCase, streamCases } from "./StreamBench.ts"

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const filter = args.find((a) => !a.startsWith("--"))
const filters = filter?.split(",").map((f) => f.trim()).filter((f) => f !== "")
const wants = (group: string) => filters === undefined || filters.some((f) => group.startsWith(f) || f.startsWith(group))
const selected = (c: Case) => filters === undefined || filters.some((f) => `${c.group}: ${c.name}`.includes(f) || c.group.startsWith(f))
const answers = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect({ host, port })
    s.setTimeout(1500, () => (s.destroy(), resolve(false)))
    s.once("connect", () => (s.destroy(), resolve(true)))
    s.once("error", () => resolve(false))
  })

// the quick mode's sizes for the older storage cases, which have no quick sizes of their own
const quickSized = (c: Case): Case =>
  quick && (c.group === "postgres" || c.group === "lmdb" || (c.group === "projection" && c.name.includes("follower"))) ? { ...c, ops: Math.max(1000, Math.ceil(c.ops / 5)) } : c

const runAll = (cases: ReadonlyArray<Case>) =>
  Effect.gen(function*() {
    const out: Array<Result> = []
    for (const original of cases) {
      const c = quickSized(original)
      if (!selected(c)) continue
      const started = performance.now()
      const r = yield* runCase(c, 3, quick ? 1 : undefined)
      const secs = ((performance.now() - started) / 1000).toFixed(1)
      console.log(`  ${c.group}: ${c.name}: ${r.oursPerSec}/s${r.ratio === null ? "" : ` (${r.peer} ${r.rawPerSec}/s, ×${r.ratio})`} [${secs} s]`)
      out.push(r)
    }
    return out
  })

const runId = Date.now().toString(36)

/**
 * Runs one group; a group that fails (a server that does not start, a connection refused) is
 * reported and skipped, so the rest of the run and its table are kept.
 */
const guarded = <A>(group: string, skipped: Array<string>, fallback: A, effect: Effect.Effect<A, unknown>) =>
  effect.pipe(
    Effect.catchCause((cause) =>
      Effect.sync(() => {
        const message = Cause.pretty(cause).split("\n").slice(0, 12).join("\n")
        console.error(`  ${group}: FAILED, skipped:\n${message}`)
        skipped.push(`${group} (failed: ${message.split("\n")[0]})`)
        return fallback
      })
    )
  )

const program = Effect.gen(function*() {
  const began = performance.now()
  const results: Array<Result> = []
  const metrics: Array<Metric> = []
  const skipped: Array<string> = []
  const schemas: Array<string> = []
  const httpLatency: Record<string, unknown> = {}
  yield* Effect.addFinalizer(() => dropSchemas(schemas))
  const [pgUp, kafkaUp] = yield* Effect.promise(() => {
    const [host, port] = kafkaBrokers[0]!.split(":")
    return Promise.all([answers("127.0.0.1", 5432), answers(host!, Number(port ?? 9092))])
  })
  const schema = (name: string) => {
    const s = `bench_${name}${runId}`
    schemas.push(s)
    return s
  }
  const noPg = "nothing on 127.0.0.1:5432"

  // the event store on PostgreSQL
  if (pgUp && wants("postgres")) {
    const s = schema("")
    results.push(...(yield* Effect.scoped(Effect.gen(function*() {
      const cases = yield* postgresCases(s)
      return yield* runAll(cases)
    }).pipe(Effect.provide(postgresLayer(s))))))
  } else if (!pgUp) skipped.push(`postgres (${noPg})`)

  // the command path against Emmett and the machine's commit rate
  if (pgUp && wants("emmett")) {
    const ours = schema("emt_ours_")
    const emmett = `bench_emmett_${runId}`
    const raw = schema("emt_raw_")
    results.push(...(yield* Effect.scoped(Effect.gen(function*() {
      return yield* runAll(yield* emmettCases(emmett, raw, quick))
    }).pipe(Effect.provide(Postgres.layerStorage({ ...pgSettings(ours), maxConnections: EMMETT_POOL }))))))
  } else if (!pgUp) skipped.push(`emmett (${noPg})`)

  // stream length and snapshot-table size
  if (pgUp && wants("stream")) {
    const s = schema("stream_")
    results.push(...(yield* Effect.scoped(Effect.gen(function*() {
      return yield* runAll(yield* streamCases(s, quick))
    }).pipe(Effect.provide(postgresLayer(s))))))
  } else if (!pgUp) skipped.push(`stream (${noPg})`)
  if (pgUp && wants("snapshots")) {
    const small = schema("snap_small_")
    const large = schema("snap_large_")
    results.push(...(yield* Effect.scoped(Effect.gen(function*() {
      return yield* runAll([yield* snapshotScalingCase({ small, large }, quick)])
    }))))
  } else if (!pgUp) skipped.push(`snapshots (${noPg})`)

  // the event store on LMDB
  if (wants("lmdb")) results.push(...(yield* lmdbGroup(runAll)))

  // projections: follower vs raw upserts, rebuild
  if (wants("projection")) {
    results.push(...(yield* Effect.scoped(Effect.flatMap(projectionCases(pgUp ? schema("proj_") : undefined), runAll))))
  }

  // relay and consumer, on both storage backends
  if (wants("relay") || wants("consumer")) {
    if (!kafkaUp) skipped.push(`relay → Kafka and consumer (nothing on ${kafkaBrokers[0]}); only the in-process relay ran`)
    results.push(...(yield* Effect.scoped(Effect.gen(function*() {
      const raw: RawKafka | undefined = kafkaUp ? yield* rawKafka(runId) : undefined
      const kafka = kafkaUp ? yield* kafkaBroker(runId) : undefined
      const cases: Array<Case> = []
      if (pgUp) {
        const s = schema("msg_")
        const storage = yield* Layer.build(postgresLayer(s))
        const claim = kafkaUp ? yield* pgClaim(s) : undefined
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
  }

  // HTTP: the exam service vs a bare server, embedded and on PostgreSQL + Kafka
  for (const backend of ["lmdb", "postgres"] as const) {
    const group = `http ${backend === "lmdb" ? "LMDB+in-process" : "PostgreSQL+Kafka"}`
    if (!wants(group)) continue
    if (backend === "postgres" && !(pgUp && kafkaUp)) {
      skipped.push(`${group} (needs PostgreSQL and Kafka)`)
      continue
    }
    const out = yield* guarded(group, skipped, { results: [], metrics: [], latency: {} }, httpGroup({ backend, runId, quick, schemas, runAll }))
    results.push(...out.results)
    metrics.push(...out.metrics)
    Object.assign(httpLatency, out.latency)
  }

  // sagas, with DBOS on the same PostgreSQL
  if (pgUp && wants("saga")) {
    const out = yield* guarded("saga", skipped, { results: [], metrics: [] }, sagaGroup({ quick, kafkaUp, withDbos: true, schemas }))
    results.push(...out.results)
    metrics.push(...out.metrics)
    if (!kafkaUp) skipped.push("saga on Kafka (Kafka does not answer)")
  } else if (!pgUp) skipped.push(`saga (${noPg})`)

  const seconds = Math.round((performance.now() - began) / 1000)
  console.log()
  printTable(results, metrics)
  console.log(`\n${quick ? "quick run" : "run"} took ${Math.floor(seconds / 60)} min ${seconds % 60} s`)
  if (skipped.length > 0) console.log(`skipped: ${skipped.join("; ")}`)
  writeResults(results, metrics, {
    quick,
    filter: filter ?? null,
    seconds,
    skipped,
    httpLatency,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? "?", memoryGb: Math.round(os.totalmem() / 2 ** 30) }
  })
})

Effect.runPromise(Effect.scoped(program)).then(
  // DBOS and the Kafka clients can leave timers behind: the run is over
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
