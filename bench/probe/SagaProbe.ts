/**
 * Our saga alone (bench/SagaBench.ts's local + remote step, coordinator and participant in this
 * process), for a CPU profile of the timed part: N sagas at concurrency C on BROKER=memory|kafka.
 * Prints the spans per saga by name (SQL statements are the database-named spans). PostgreSQL
 * schemas it creates are dropped at the end.
 *
 *   BROKER=kafka N=200 C=50 PROF=/tmp/saga.cpuprofile node --conditions=effect-minos-source --import tsx bench/probe/SagaProbe.ts
 *   node --conditions=effect-minos-source --import tsx bench/probe/ProfileSummary.ts /tmp/saga.cpuprofile 30 0 200
 */
import { Effect, Tracer } from "effect"
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector/promises"
import { percentile } from "../Harness.ts"
import { ours } from "../SagaBench.ts"
import { dropSchemas } from "../StorageBench.ts"

const broker = (process.env["BROKER"] ?? "kafka") as "memory" | "kafka"
const N = Number(process.env["N"] ?? 200)
const C = Number(process.env["C"] ?? 50)
const schemas: Array<string> = []

/** Spans by name while `counting` is on: SQL statements are the database-named spans. */
let counting = false
const spans = new Map<string, number>()
const tracer = Tracer.make({
  span(options) {
    if (counting) spans.set(options.name, (spans.get(options.name) ?? 0) + 1)
    return new Tracer.NativeSpan(options)
  }
})

const program = Effect.scoped(Effect.gen(function*() {
  const runner = yield* ours(broker, Date.now().toString(36), schemas)
  yield* runner.run(Math.min(N, 50), C)
  const session = new Session()
  const file = process.env["PROF"]
  if (file !== undefined) {
    session.connect()
    yield* Effect.promise(() => session.post("Profiler.enable"))
    yield* Effect.promise(() => session.post("Profiler.start"))
  }
  counting = true
  const out = yield* runner.run(N, C)
  counting = false
  if (file !== undefined) {
    const { profile } = yield* Effect.promise(() => session.post("Profiler.stop"))
    writeFileSync(file, JSON.stringify(profile))
  }
  const top = [...spans].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([name, n]) => `${name} ${(n / N).toFixed(1)}`)
  console.log(`spans per saga (both services): ${top.join(", ")}`)
  console.log(`${N} sagas on ${runner.name} at concurrency ${C}: ${Math.round((N * 1000) / out.ms)}/s, p50 ${Math.round(percentile(out.latencies, 50))} ms, p99 ${Math.round(percentile(out.latencies, 99))} ms`)
})).pipe(Effect.provideService(Tracer.Tracer, tracer))

Effect.runPromise(Effect.ensuring(program, Effect.suspend(() => dropSchemas(schemas)))).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
