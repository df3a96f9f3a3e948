/**
 * The `Inbox` port on LMDB (see `Lmdb.layer`): claims keyed `[group, topic, identifier]` (plus an
 * index by handling time for `prune`), dead letters keyed by an increasing id.
 *
 * Inside a unit of work a claim is staged with the handler's writes: it answers from the committed
 * and staged claims, and if another handler committed the same claim meanwhile, the unit fails with
 * `Unavailable` (retryable) and writes nothing, so the redelivery finds the claim and skips. A dead
 * letter's id is reserved at once (ids may have gaps, like a PostgreSQL sequence).
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import { Abort, asRecord, CorruptData, type DeadLetterValue, errorMapper, LmdbEnv, type WriteCtx } from "./internal/Env.ts"
import { type DeadLetter, Inbox, InboxError, type InboxShape } from "../queue/Inbox.ts"

const mapError = (what: string) =>
  errorMapper(what, (f) => new InboxError({ reason: f.kind === "Unavailable" ? "Unavailable" : "Unknown", message: f.message, cause: f.cause }))

const invalid = (message: string) => new InboxError({ reason: "InvalidInput", message })
const notFound = (id: number) => new InboxError({ reason: "NotFound", message: `No dead letter ${id}` })

const claimKey = (group: string, topic: string, identifier: string) => `${group}\u0000${topic}\u0000${identifier}`

const toLetter = (id: number, value: unknown): DeadLetter => {
  const v = asRecord(value, `dead letter ${id}`) as unknown as DeadLetterValue
  if (typeof v.topic !== "string" || typeof v.value !== "string") throw new CorruptData(`dead letter ${id} has no topic or value`)
  return {
    id,
    group: v.group,
    topic: v.topic,
    key: v.key,
    value: v.value,
    headers: v.headers,
    identifier: v.identifier,
    error: v.error,
    attempts: v.attempts,
    firstFailedAt: v.firstFailedAt,
    lastFailedAt: v.lastFailedAt
  }
}

const isHeaders = (h: unknown): boolean =>
  typeof h === "object" && h !== null && !Array.isArray(h) && Object.values(h).every((v) => typeof v === "string")

const checkLetter = (l: Omit<DeadLetter, "id">): string | undefined => {
  if (typeof l.group !== "string" || typeof l.topic !== "string" || typeof l.value !== "string" || typeof l.error !== "string") {
    return "A dead letter needs a group, topic, value and error as text"
  }
  if (l.key !== null && typeof l.key !== "string") return "A dead letter's key is text or null"
  if (l.identifier !== null && typeof l.identifier !== "string") return "A dead letter's identifier is text or null"
  if (!isHeaders(l.headers)) return "A dead letter's headers are text"
  if (!Number.isInteger(l.attempts) || !Number.isFinite(l.firstFailedAt) || !Number.isFinite(l.lastFailedAt)) return "A dead letter's attempts and times are numbers"
  return undefined
}

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const env = yield* LmdbEnv
  const { dbs } = env

  const claim = Effect.fn("LmdbInbox.claim")(function*(group: string, topic: string, identifier: string, now: number) {
    if (typeof group !== "string" || typeof topic !== "string" || typeof identifier !== "string") return yield* Effect.fail(invalid("group, topic and identifier are text"))
    if (!Number.isFinite(now)) return yield* Effect.fail(invalid(`now must be a number, got ${now}`))
    const onError = mapError("claim")
    const put = (w: WriteCtx) => {
      w.dbs.inbox.putSync([group, topic, identifier], now)
      w.dbs.inboxage.putSync([now, group, topic, identifier], true)
    }
    const unit = yield* env.unit
    if (unit === undefined) {
      return yield* env.write((w) => {
        if (w.dbs.inbox.get([group, topic, identifier]) !== undefined) return false
        put(w)
        return true
      }, onError)
    }
    const key = claimKey(group, topic, identifier)
    if (unit.claims.has(key)) return false
    if (yield* env.read(() => dbs.inbox.get([group, topic, identifier]) !== undefined, onError)) return false
    unit.claims.add(key)
    unit.ops.push((w) => {
      if (w.dbs.inbox.get([group, topic, identifier]) !== undefined) {
        // another handler committed the same message meanwhile: redeliver, then it is a duplicate
        throw new Abort(new InboxError({ reason: "Unavailable", message: `${group} claimed ${topic} ${identifier} concurrently; retry` }))
      }
      put(w)
    })
    return true
  })

  const release = Effect.fn("LmdbInbox.release")(function*(group: string, topic: string, identifier: string) {
    const op = (w: WriteCtx) => {
      const at = w.dbs.inbox.get([group, topic, identifier])
      if (at === undefined) return
      w.dbs.inbox.removeSync([group, topic, identifier])
      w.dbs.inboxage.removeSync([at, group, topic, identifier])
    }
    const unit = yield* env.unit
    if (unit === undefined) return yield* env.write(op, mapError("release"))
    unit.claims.delete(claimKey(group, topic, identifier))
    unit.ops.push(op)
  })

  const deadLetter = Effect.fn("LmdbInbox.deadLetter")(function*(l: Omit<DeadLetter, "id">) {
    const problem = checkLetter(l)
    if (problem !== undefined) return yield* Effect.fail(invalid(problem))
    const value: DeadLetterValue = {
      group: l.group,
      topic: l.topic,
      key: l.key,
      value: l.value,
      headers: l.headers,
      identifier: l.identifier,
      error: l.error,
      attempts: l.attempts,
      firstFailedAt: l.firstFailedAt,
      lastFailedAt: l.lastFailedAt
    }
    const onError = mapError("dead letter")
    const unit = yield* env.unit
    if (unit === undefined) {
      return yield* env.write((w) => {
        const id = w.next("deadletter", 1)
        w.dbs.deadletters.putSync(id, value)
        return id
      }, onError)
    }
    // the id is needed now, the row is written with the unit
    const id = yield* env.write((w) => w.next("deadletter", 1), onError)
    unit.ops.push((w) => w.dbs.deadletters.putSync(id, value))
    return id
  })

  const listDeadLetters = Effect.fn("LmdbInbox.listDeadLetters")(function*(options?: { readonly topic?: string | undefined; readonly limit?: number | undefined }) {
    const limit = options?.limit ?? 1000
    if (!Number.isInteger(limit) || limit < 0) return yield* Effect.fail(invalid(`limit must be a non-negative integer, got ${limit}`))
    const topic = options?.topic
    return yield* env.read(() => {
      const out: Array<DeadLetter> = []
      if (limit === 0) return out
      for (const { key, value } of dbs.deadletters.getRange({ start: 0 })) {
        const letter = toLetter(key, value)
        if (topic !== undefined && letter.topic !== topic) continue
        out.push(letter)
        if (out.length >= limit) break
      }
      return out
    }, mapError("list dead letters"))
  })

  const getDeadLetter = Effect.fn("LmdbInbox.getDeadLetter")(function*(id: number) {
    const unit = yield* env.unit
    const value = yield* env.read(() => dbs.deadletters.get(id), mapError("get dead letter"))
    if (value === undefined || unit?.removedDeadLetters.has(id) === true) return yield* Effect.fail(notFound(id))
    return yield* env.read(() => toLetter(id, value), mapError("get dead letter"))
  })

  const removeDeadLetter = Effect.fn("LmdbInbox.removeDeadLetter")(function*(id: number) {
    const onError = mapError("remove dead letter")
    const op = (w: WriteCtx) => {
      if (!w.dbs.deadletters.removeSync(id)) throw new Abort(notFound(id))
    }
    const unit = yield* env.unit
    if (unit === undefined) return yield* env.write(op, onError)
    const exists = yield* env.read(() => dbs.deadletters.doesExist(id), onError)
    if (!exists || unit.removedDeadLetters.has(id)) return yield* Effect.fail(notFound(id))
    unit.removedDeadLetters.add(id)
    unit.ops.push(op)
  })

  const prune = Effect.fn("LmdbInbox.prune")(function*(olderThan: number) {
    if (!Number.isFinite(olderThan)) return yield* Effect.fail(invalid(`olderThan must be a number, got ${olderThan}`))
    return yield* env.write((w) => {
      const old = Array.from(w.dbs.inboxage.getKeys({ end: [olderThan] }))
      for (const key of old) {
        const [, group, topic, identifier] = key
        w.dbs.inboxage.removeSync(key)
        w.dbs.inbox.removeSync([group, topic, identifier])
      }
      return old.length
    }, mapError("prune"))
  })

  return Inbox.of({ claim, release, deadLetter, listDeadLetters, getDeadLetter, removeDeadLetter, prune } satisfies InboxShape)
})

/**
 * Needs the shared environment (see `Lmdb.layer`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<Inbox, never, LmdbEnv> = Layer.effect(Inbox, make)
