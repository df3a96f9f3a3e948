/**
 * A small side-by-side benchmark harness: each case runs our path and the raw driver doing the same
 * work, alternating rounds in one process, and reports throughput and the ratio ours/raw.
 */
import { Effect } from "effect"
import { mkdirSync, writeFileSync } from "node:fs"

export interface Measure {
  /**
   * Runs `ops` operations; resolves when all are done. A measure with untimed setup (staging rows,
   * pre-publishing messages, joining a consumer group) times its own timed part and returns the
   * elapsed milliseconds; otherwise the whole run is timed.
   */
  readonly run: (ops: number) => Effect.Effect<void | number, unknown>
}

export interface Case {
  readonly group: string
  readonly name: string
  /** Operations per round. */
  readonly ops: number
  /** What one operation is ("event", "command", "message"). */
  readonly unit: string
  readonly ours: Measure
  readonly raw?: Measure
  /** The ratio goal ours/raw, if the issue sets one. */
  readonly goalRatio?: number
  /** An absolute throughput goal (units/s). */
  readonly goalRate?: number
  /** Operations of the warm-up run of each side (default ops / 5). */
  readonly warmupOps?: number
  /** Timed rounds of each side (default 3); the median counts. */
  readonly rounds?: number
}

export interface Result {
  readonly group: string
  readonly name: string
  readonly unit: string
  readonly oursPerSec: number
  readonly rawPerSec: number | null
  readonly ratio: number | null
  readonly goalRatio: number | null
  readonly goalRate: number | null
  readonly met: boolean | null
  readonly rounds: number
  /** Every round's rate, in run order (the JSON shows the spread behind the median). */
  readonly oursSamples: ReadonlyArray<number>
  readonly rawSamples: ReadonlyArray<number> | null
}

const rate = (ops: number, ms: number) => (ops * 1000) / Math.max(ms, 0.001)

const timed = (m: Measure, ops: number) =>
  Effect.gen(function*() {
    const start = performance.now()
    const self = yield* m.run(ops)
    return rate(ops, typeof self === "number" ? self : performance.now() - start)
  })

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

/** Warm-up, then `rounds` alternating rounds of ours and raw; the median of each side. */
export const runCase = (c: Case, defaultRounds = 3) =>
  Effect.gen(function*() {
    const rounds = c.rounds ?? defaultRounds
    const warm = c.warmupOps ?? Math.max(1, Math.floor(c.ops / 5))
    yield* c.ours.run(warm)
    if (c.raw) yield* c.raw.run(warm)
    const ours: Array<number> = []
    const raw: Array<number> = []
    for (let i = 0; i < rounds; i++) {
      ours.push(yield* timed(c.ours, c.ops))
      if (c.raw) raw.push(yield* timed(c.raw, c.ops))
    }
    const o = median(ours)
    const r = c.raw ? median(raw) : null
    const ratio = r === null ? null : o / r
    const metRatio = c.goalRatio === undefined || ratio === null ? null : ratio >= c.goalRatio
    const metRate = c.goalRate === undefined ? null : o >= c.goalRate
    const met = metRatio === null && metRate === null ? null : (metRatio ?? true) && (metRate ?? true)
    return {
      group: c.group,
      name: c.name,
      unit: c.unit,
      oursPerSec: Math.round(o),
      rawPerSec: r === null ? null : Math.round(r),
      ratio: ratio === null ? null : Math.round(ratio * 100) / 100,
      goalRatio: c.goalRatio ?? null,
      goalRate: c.goalRate ?? null,
      met,
      rounds,
      oursSamples: ours.map(Math.round),
      rawSamples: c.raw ? raw.map(Math.round) : null
    } satisfies Result
  })

const pad = (s: string, n: number) => (s.length >= n ? s : s + " ".repeat(n - s.length))
const lpad = (s: string, n: number) => (s.length >= n ? s : " ".repeat(n - s.length) + s)

export const printTable = (results: ReadonlyArray<Result>) => {
  const header = `${pad("benchmark", 58)} ${lpad("ours/s", 10)} ${lpad("raw/s", 10)} ${lpad("ratio", 6)}  goal`
  console.log(header)
  console.log("-".repeat(header.length + 12))
  for (const r of results) {
    const goal = [r.goalRatio === null ? "" : `≥${r.goalRatio}×`, r.goalRate === null ? "" : `≥${r.goalRate}/s`].filter(Boolean).join(", ")
    const verdict = r.met === null ? "" : r.met ? " ✓" : " ✗"
    console.log(
      `${pad(`${r.group}: ${r.name}`, 58)} ${lpad(String(r.oursPerSec), 10)} ${lpad(r.rawPerSec === null ? "-" : String(r.rawPerSec), 10)} ${lpad(r.ratio === null ? "-" : r.ratio.toFixed(2), 6)}  ${goal}${verdict}`
    )
  }
}

export const writeResults = (results: ReadonlyArray<Result>, meta: Record<string, unknown>) => {
  mkdirSync("bench/results", { recursive: true })
  const body = JSON.stringify({ at: new Date().toISOString(), node: process.version, ...meta, results }, null, 2)
  writeFileSync("bench/results/latest.json", body)
  writeFileSync(`bench/results/${new Date().toISOString().replace(/[:.]/g, "-")}.json`, body)
}

/** Runs `n` effects with at most `concurrency` at once. */
export const concurrently = (n: number, concurrency: number, f: (i: number) => Effect.Effect<unknown, unknown>) =>
  Effect.forEach(Array.from({ length: n }, (_, i) => i), f, { concurrency, discard: true })
