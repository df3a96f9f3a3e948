/**
 * `npm run bench [filter]`: side-by-side benchmarks, printed as a table and written to
 * bench/results/latest.json. Suites whose service does not answer are skipped with a note.
 */
import { Effect } from "effect"
import { connect } from "node:net"
import { type Case, printTable, type Result, runCase, writeResults } from "./Harness.ts"
import { postgresCases, postgresLayer } from "./StorageBench.ts"

const filter = process.argv[2]
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
      if (filter !== undefined && !`${c.group}: ${c.name}`.includes(filter)) continue
      const r = yield* runCase(c)
      console.log(`  ${c.group}: ${c.name}: ${r.oursPerSec}/s${r.ratio === null ? "" : ` (raw ${r.rawPerSec}/s, ×${r.ratio})`}`)
      out.push(r)
    }
    return out
  })

const program = Effect.gen(function*() {
  const results: Array<Result> = []
  const skipped: Array<string> = []
  if (yield* Effect.promise(() => answers("127.0.0.1", 5432))) {
    const schema = `bench_${Date.now().toString(36)}`
    results.push(...(yield* Effect.scoped(Effect.gen(function*() {
      const cases = yield* postgresCases(schema)
      return yield* runAll(cases)
    }).pipe(Effect.provide(postgresLayer(schema))))))
  } else skipped.push("postgres (nothing on 127.0.0.1:5432)")
  console.log()
  printTable(results)
  if (skipped.length > 0) console.log(`\nskipped: ${skipped.join("; ")}`)
  writeResults(results, { skipped })
})

Effect.runPromise(program).catch((e) => {
  console.error(e)
  process.exit(1)
})
