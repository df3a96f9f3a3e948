/**
 * A small side-by-side benchmark harness: each case runs our path and a baseline doing the same work
 * (the raw driver, a peer library, a bare server), alternating rounds in one process, and reports
 * throughput and the ratio ours/baseline. Figures that are not a ratio (memory, latency) are
 * `Metric` rows of the same table.
 */
import { Effect } from "effect"
import { mkdirSync, writeFileSync } from "node:fs"

export interface Measure {
  /**
   * Runs `ops` operations; resolves when all are done. A measure with untimed setup (staging rows,
   * pre-publishing messages, joining a consumer group) times its own timed part and returns the
   * elapsed milliseconds; otherwise the whole run is timed. A measure that runs for a time instead of
   * a count (HTTP load) returns how many operations it did and in how long.
   */
  readonly run: (ops: number) => Effect.Effect<void | number | Timed, unknown>
}

/** What a time-bound measure did. */
export interface Timed {
  readonly count: number
  readonly ms: number
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
  /** What the baseline side is ("raw" by default; "emmett", "bare server", …). */
  readonly peer?: string
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
  /** What the baseline side was. */
  readonly peer: string
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
    if (typeof self === "object" && self !== null) return rate(self.count, self.ms)
    return rate(ops, typeof self === "number" ? self : performance.now() - start)
  })

export const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

/** The p-th percentile (nearest rank) of `xs`, 0 when empty. */
export const percentile = (xs: ReadonlyArray<number>, p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0
}

/**
 * Warm-up, then `rounds` alternating rounds of ours and raw; the median of each side. `forceRounds`
 * (the quick mode) overrides every case's own round count.
 */
export const runCase = (c: Case, defaultRounds = 3, forceRounds?: number) =>
  Effect.gen(function*() {
    const rounds = forceRounds ?? c.rounds ?? defaultRounds
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
      peer: c.raw ? c.peer ?? "raw" : "-",
      ratio: ratio === null ? null : Math.round(ratio * 100) / 100,
      goalRatio: c.goalRatio ?? null,
      goalRate: c.goalRate ?? null,
      met,
      rounds,
      oursSamples: ours.map(Math.round),
      rawSamples: c.raw ? raw.map(Math.round) : null
    } satisfies Result
  })

/**
 * A figure that is not a rate ratio: memory, latency, a derived ratio. `goal` is printed as is; `met`
 * says whether it holds (null: no goal).
 */
export interface Metric {
  readonly group: string
  readonly name: string
  readonly value: number
  readonly unit: string
  /** The baseline's figure, if there is one (e.g. the bare server's RSS). */
  readonly peerValue?: number | null
  readonly peer?: string
  readonly goal: string | null
  readonly met: boolean | null
  /** Anything else worth keeping in the JSON (p50/p99, samples). */
  readonly detail?: Record<string, unknown>
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + " ".repeat(n - s.length))
const lpad = (s: string, n: number) => (s.length >= n ? s : " ".repeat(n - s.length) + s)
const verdict = (met: boolean | null) => (met === null ? "" : met ? " ✓" : " ✗")

const goalOf = (r: Result) =>
  [r.goalRatio === null ? "" : `≥${r.goalRatio}×`, r.goalRate === null ? "" : `≥${r.goalRate}/s`].filter(Boolean).join(", ")

/** One table: ratio rows, then metric rows, each with its goal and ✓/✗. */
export const printTable = (results: ReadonlyArray<Result>, metrics: ReadonlyArray<Metric> = []) => {
  const header = `${pad("benchmark", 76)} ${lpad("ours", 12)} ${lpad("baseline", 12)} ${lpad("ratio", 6)}  goal`
  console.log(header)
  console.log("-".repeat(header.length + 14))
  for (const r of results) {
    const name = r.rawPerSec === null ? `${r.group}: ${r.name}` : `${r.group}: ${r.name} [vs ${r.peer}]`
    console.log(
      `${pad(name, 76)} ${lpad(`${r.oursPerSec}/s`, 12)} ${lpad(r.rawPerSec === null ? "-" : `${r.rawPerSec}/s`, 12)} ${lpad(r.ratio === null ? "-" : r.ratio.toFixed(2), 6)}  ${goalOf(r)}${verdict(r.met)}`
    )
  }
  for (const m of metrics) {
    const peerValue = m.peerValue === undefined || m.peerValue === null ? "-" : `${m.peerValue} ${m.unit}`
    const name = m.peer === undefined ? `${m.group}: ${m.name}` : `${m.group}: ${m.name} [vs ${m.peer}]`
    console.log(`${pad(name, 76)} ${lpad(`${m.value} ${m.unit}`, 12)} ${lpad(peerValue, 12)} ${lpad("", 6)}  ${m.goal ?? ""}${verdict(m.met)}`)
  }
}

export const writeResults = (results: ReadonlyArray<Result>, metrics: ReadonlyArray<Metric>, meta: Record<string, unknown>) => {
  mkdirSync("bench/results", { recursive: true })
  const body = JSON.stringify({ at: new Date().toISOString(), node: process.version, ...meta, results, metrics }, null, 2)
  writeFileSync("bench/results/latest.json", body)
  writeFileSync(`bench/results/${new Date().toISOString().replace(/[:.]/g, "-")}.json`, body)
}

/** Runs `n` effects with at most `concurrency` at once. */
export const concurrently = (n: number, concurrency: number, f: (i: number) => Effect.Effect<unknown, unknown>) =>
  Effect.forEach(Array.from({ length: n }, (_, i) => i), f, { concurrency, discard: true })
