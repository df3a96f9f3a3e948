/**
 * The command path alone, for a CPU profile: the `emmett` group's workload (per stream one create and
 * four updates, each load → decide → append + snapshot + outbox) through `Repository` on PostgreSQL,
 * in a fresh schema (dropped at the end), N commands at concurrency C after a warm-up. Prints the
 * spans per command by name (SQL statements are the `sql.execute`/database-named spans; the rest are
 * `Effect.fn` spans) and the schema's table lookups and row writes per command. With PROF=<file> it
 * writes a CPU profile of the timed part only (start-up and warm-up left out).
 *
 *   N=3000 C=8 PROF=/tmp/cmd.cpuprofile node --conditions=effect-minos-source --import tsx bench/probe/CommandProbe.ts
 *   node --conditions=effect-minos-source --import tsx bench/probe/ProfileSummary.ts /tmp/cmd.cpuprofile
 */
import { Effect, Redacted, Tracer } from "effect"
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector/promises"
import pg from "pg"
import * as Repository from "../../src/command/Repository.ts"
import * as Entity from "../../src/domain/Entity.ts"
import { Exam, examFields } from "../../test/fixtures/Domain.ts"
import { UPDATES } from "../EmmettBench.ts"
import { concurrently } from "../Harness.ts"
import { dropSchemas, pgSettings, postgresLayer } from "../StorageBench.ts"

const N = Number(process.env["N"] ?? 3000)
const C = Number(process.env["C"] ?? 8)
const schema = `probe_cmd_${Date.now().toString(36)}`

const counters = async () => {
  const s = pgSettings(schema)
  const client = new pg.Client({ host: s.host, port: s.port, database: s.database, user: s.user, password: Redacted.value(s.password) })
  await client.connect()
  try {
    const db = await client.query<{ commits: string }>(`SELECT xact_commit::text AS commits FROM pg_stat_database WHERE datname = current_database()`)
    const tables = await client.query<{ scans: string; writes: string }>(
      `SELECT (sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)))::text AS scans, (sum(n_tup_ins + n_tup_upd + n_tup_del))::text AS writes
       FROM pg_stat_user_tables WHERE schemaname = $1`,
      [schema]
    )
    return { commits: Number(db.rows[0]!.commits), scans: Number(tables.rows[0]!.scans ?? 0), writes: Number(tables.rows[0]!.writes ?? 0) }
  } finally {
    await client.end()
  }
}

/** Counts spans by name while `counting` is on. */
let counting = false
const spans = new Map<string, number>()
const tracer = Tracer.make({
  span(options) {
    if (counting) spans.set(options.name, (spans.get(options.name) ?? 0) + 1)
    return new Tracer.NativeSpan(options)
  }
})

const profiler = async () => {
  const file = process.env["PROF"]
  if (file === undefined) return async () => undefined
  const session = new Session()
  session.connect()
  await session.post("Profiler.enable")
  await session.post("Profiler.start")
  return async () => {
    const { profile } = await session.post("Profiler.stop")
    writeFileSync(file, JSON.stringify(profile))
    session.disconnect()
  }
}

const program = Effect.gen(function*() {
  const exams = yield* Repository.make(Exam, { publish: true })
  const run = (n: number) =>
    concurrently(Math.max(1, Math.round(n / (UPDATES + 1))), C, () =>
      Effect.gen(function*() {
        const { id } = yield* exams.create(Entity.create(examFields))
        for (let i = 0; i < UPDATES; i++) yield* exams.handle(id, Entity.update({ seats: i + 1 }))
      }))
  yield* run(Math.min(500, N))
  const before = yield* Effect.promise(counters)
  const stop = yield* Effect.promise(profiler)
  counting = true
  const started = performance.now()
  yield* run(N)
  const ms = performance.now() - started
  counting = false
  yield* Effect.promise(stop)
  // statistics reach pg_stat_* with a delay of up to a second
  yield* Effect.sleep("1500 millis")
  const after = yield* Effect.promise(counters)
  console.log(`${N} commands at concurrency ${C}: ${Math.round((N * 1000) / ms)}/s`)
  const perCommand = [...spans].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name} ${(n / N).toFixed(2)}`)
  console.log(`spans per command: ${perCommand.join(", ")}`)
  console.log(`per command: ${((after.commits - before.commits) / N).toFixed(2)} commits (whole database), ${((after.scans - before.scans) / N).toFixed(2)} table scans/lookups, ${((after.writes - before.writes) / N).toFixed(2)} row writes`)
}).pipe(Effect.provide(postgresLayer(schema)), Effect.provideService(Tracer.Tracer, tracer))

Effect.runPromise(Effect.ensuring(program, dropSchemas([schema]))).catch((e) => {
  console.error(e)
  process.exit(1)
})
