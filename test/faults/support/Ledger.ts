/**
 * What the clients saw: every HTTP answer with its time, the acknowledged writes, and the checks
 * every error body must pass (no stack trace, SQL, or host:port in it).
 */
import { Clock, Effect } from "effect"

/** A seeded PRNG (mulberry32): the same seed gives the same load and the same faults. */
export const random = (seed: number) => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)),
    pick: <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(next() * xs.length)]!
  }
}
export type Random = ReturnType<typeof random>

export interface Answer {
  readonly at: number
  readonly op: string
  /** 0: no answer (connection refused or reset, timeout). */
  readonly status: number
  readonly body: string
  /** What was sent, when an error body may echo it (fuzzing). */
  readonly sent?: string
}

export interface Ack {
  readonly op: "create" | "update" | "delete"
  readonly uuid: string
  readonly version: number
  readonly at: number
}

const internals: ReadonlyArray<readonly [string, RegExp]> = [
  ["stack trace", /\bat [\w$.<>]+ \(|\bat (?:file|node):|\.(?:ts|js):\d+:\d+/],
  ["SQL", /\b(?:SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b|\bsyntax error at\b|\brelation "|\bSQLSTATE\b|\bduplicate key\b/],
  ["host:port", /\b(?:\d{1,3}\.){3}\d{1,3}:\d{2,5}\b|\blocalhost:\d{2,5}\b|\bECONNREFUSED\b|\bENOTFOUND\b/],
  ["driver", /\bPgConnection\b|\bkafkajs\b|\bKafkaJS\w+|node_modules/]
]

/** What internal detail an error body leaks, if any; the caller's own input echoed back does not count. */
export const leak = (body: string, sent?: string): string | undefined => {
  for (const [what, re] of internals) {
    for (const m of body.matchAll(new RegExp(re.source, "g"))) {
      if (sent === undefined || !sent.includes(m[0])) return what
    }
  }
  return undefined
}

export interface Ledger {
  readonly answers: Array<Answer>
  readonly acks: Array<Ack>
  readonly record: (op: string, status: number, body: string, sent?: string) => Effect.Effect<number>
  readonly ack: (ack: Omit<Ack, "at">) => Effect.Effect<void>
}

export const make = (): Ledger => {
  const answers: Array<Answer> = []
  const acks: Array<Ack> = []
  return {
    answers,
    acks,
    record: (op, status, body, sent) =>
      Effect.map(Clock.currentTimeMillis, (at) => {
        answers.push({ at, op, status, body: status >= 400 || status === 0 ? body.slice(0, 4000) : "", ...(status >= 400 && sent !== undefined ? { sent } : {}) })
        return at
      }),
    ack: (ack) => Effect.map(Clock.currentTimeMillis, (at) => void acks.push({ ...ack, at }))
  }
}

/** Counts over the answers. */
export const summary = (ledger: Ledger, window?: { readonly from: number; readonly to: number }) => {
  const inWindow = window === undefined ? ledger.answers : ledger.answers.filter((a) => a.at >= window.from && a.at <= window.to)
  const byStatus: Record<string, number> = {}
  for (const a of inWindow) byStatus[String(a.status)] = (byStatus[String(a.status)] ?? 0) + 1
  const leaks = inWindow.filter((a) => a.status >= 400 && leak(a.body, a.sent) !== undefined)
  return {
    requests: inWindow.length,
    byStatus,
    acknowledged: ledger.acks.length,
    noAnswer: inWindow.filter((a) => a.status === 0).length,
    server5xx: inWindow.filter((a) => a.status >= 500).length,
    non503: inWindow.filter((a) => a.status >= 500 && a.status !== 503).length,
    leaks: leaks.length,
    leakExamples: leaks.slice(0, 3).map((a) => `${a.op} ${a.status} [${leak(a.body, a.sent)}]: ${a.body.slice(0, 300)}`),
    non503Examples: inWindow.filter((a) => a.status >= 500 && a.status !== 503).slice(0, 3).map((a) => `${a.op} ${a.status}: ${a.body.slice(0, 300)}`)
  }
}
