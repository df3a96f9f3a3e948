/**
 * Bounded load on the exam service: creates, updates and deletes, at most `count` requests and at
 * most `durationMs`, `concurrency` at a time, chosen by a seeded PRNG. Every answer goes to the
 * ledger; a 2xx write is an acknowledgement the checker holds the stores to.
 */
import { Duration, Effect, Ref } from "effect"
import * as Ledger from "./Ledger.ts"

export interface Http {
  readonly status: number
  readonly text: string
  readonly json: unknown
}

/** One request; status 0 when nothing answered (refused, reset, timed out). */
export const request = (method: string, url: string, body?: unknown, timeoutMs = 15_000): Effect.Effect<Http> =>
  Effect.promise(async () => {
    try {
      const res = await fetch(url, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs)
      })
      const text = await res.text()
      let json: unknown = undefined
      try {
        json = text.length > 0 ? JSON.parse(text) : undefined
      } catch {
        json = undefined
      }
      return { status: res.status, text, json }
    } catch (e) {
      return { status: 0, text: String(e), json: undefined }
    }
  })

export interface Options {
  readonly url: string
  readonly count: number
  readonly durationMs: number
  readonly concurrency: number
  readonly seed: number
  readonly subject: string
  /** Creates first: this many before updates and deletes are mixed in. */
  readonly warmup?: number
  /** A pause after each request, to keep the load small on a shared machine. */
  readonly paceMs?: number
  /** Set to end the load early (the fault is over). */
  readonly stop?: Ref.Ref<boolean>
}

interface Live {
  readonly uuids: Array<string>
  /** An outcome unknown (no answer): left alone from then on. */
  readonly doubtful: Set<string>
}

const ref = (json: unknown): { uuid: string; version: number } | undefined => {
  const r = json as { uuid?: unknown; version?: unknown } | undefined
  return typeof r?.uuid === "string" && typeof r.version === "number" ? { uuid: r.uuid, version: r.version } : undefined
}

/** Runs the load to its count or its deadline, whichever comes first. */
export const run = (ledger: Ledger.Ledger, options: Options) =>
  Effect.gen(function*() {
    const rnd = Ledger.random(options.seed)
    const live: Live = { uuids: [], doubtful: new Set() }
    const warmup = options.warmup ?? Math.min(20, options.count)
    const stopped = options.stop === undefined ? Effect.succeed(false) : Ref.get(options.stop)
    const one = (i: number): Effect.Effect<number> =>
      Effect.gen(function*() {
        if (yield* stopped) return -1
        const roll = rnd.next()
        const target = live.uuids.length > 0 ? rnd.pick(live.uuids) : undefined
        if (i < warmup || target === undefined || roll < 0.4) {
          const r = yield* request("POST", `${options.url}/exams`, { title: `t${i}`, subject: options.subject, durationMinutes: rnd.int(1, 600) })
          yield* ledger.record("create", r.status, r.text)
          const acked = r.status === 201 ? ref(r.json) : undefined
          if (acked !== undefined) {
            yield* ledger.ack({ op: "create", ...acked })
            live.uuids.push(acked.uuid)
          }
          return r.status
        }
        if (roll < 0.9) {
          const r = yield* request("PATCH", `${options.url}/exams/${target}`, { title: `t${i}`, durationMinutes: rnd.int(1, 600) })
          yield* ledger.record("update", r.status, r.text)
          const acked = r.status === 200 ? ref(r.json) : undefined
          if (acked !== undefined) yield* ledger.ack({ op: "update", ...acked })
          if (r.status === 0) live.doubtful.add(target)
          return r.status
        }
        // one delete per aggregate: taken out of the live set before it is sent
        const at = live.uuids.indexOf(target)
        if (at >= 0) live.uuids.splice(at, 1)
        const r = yield* request("DELETE", `${options.url}/exams/${target}`)
        yield* ledger.record("delete", r.status, r.text)
        const acked = r.status === 200 ? ref(r.json) : undefined
        if (acked !== undefined) yield* ledger.ack({ op: "delete", ...acked })
        return r.status
      }).pipe(
        // nothing answered: the service is down; wait a little instead of spinning through the count
        Effect.tap((status) =>
          status === 0 || status === 503 ? Effect.sleep("100 millis") : status > 0 && options.paceMs ? Effect.sleep(Duration.millis(options.paceMs)) : Effect.void
        )
      )
    const ran = yield* Effect.forEach(Array.from({ length: options.count }, (_, i) => i), one, { concurrency: options.concurrency, discard: true }).pipe(
      Effect.timeoutOption(Duration.millis(options.durationMs))
    )
    return { finished: ran._tag === "Some", live: live.uuids.filter((u) => !live.doubtful.has(u)) }
  })
