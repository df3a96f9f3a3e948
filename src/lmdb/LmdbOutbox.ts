/**
 * The `Outbox` port on LMDB (see `Lmdb.layer`). Publishable rows live in the `outbox` database keyed
 * by a sequence number (oldest first); rows of an open minos transaction wait in `txoutbox` until
 * its commit moves them (with new sequence numbers) or its reject drops them.
 *
 * `process` claims rows in memory (the LMDB folder belongs to one process), publishes them, then deletes
 * them in one write transaction; a failed or dead publish gives them back at once (after a partial
 * failure, all but the acknowledged ones, which are deleted). Two relay fibers
 * never hold the same row.
 * `awaitWork` is woken by the commits of this process only.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Layer } from "effect"
import { isValidTopic, type OutgoingRecord } from "../broker/Broker.ts"
import { isUuid } from "../internal/Ids.ts"
import { Abort, asRecord, CorruptData, dbLookup, errorMapper, LmdbEnv, type OutboxValue, unitLookup, type WriteCtx } from "./internal/Env.ts"
import { acknowledgedRows, Outbox, OutboxError, type OutboxRow, type OutboxShape } from "../queue/Outbox.ts"

/**
 * How long a claimed row stays hidden from other relays while it is being published (ms).
 *
 * @category defaults
 * @since 0.1.0
 */
const claimedByFolder = new Map<string, Set<number>>()
/** The rows claimed in this process for the environment at `path`. */
const claimedRows = (path: string): Set<number> => {
  let set = claimedByFolder.get(path)
  if (set === undefined) claimedByFolder.set(path, (set = new Set()))
  return set
}

const mapError = (what: string) =>
  errorMapper(what, (f) => new OutboxError({ reason: f.kind === "Unavailable" ? "Unavailable" : "Unknown", message: f.message, cause: f.cause }))

const invalid = (message: string) => new OutboxError({ reason: "InvalidInput", message })

const isHeaders = (h: unknown): boolean =>
  typeof h === "object" && h !== null && !Array.isArray(h) && Object.values(h).every((v) => typeof v === "string")

const checkRecord = (r: OutgoingRecord, i: number): string | undefined => {
  if (typeof r !== "object" || r === null) return `Record ${i} is not a record`
  if (typeof r.topic !== "string" || !isValidTopic(r.topic)) return `Record ${i} has an invalid topic ${JSON.stringify(r.topic)}`
  if (r.key !== null && typeof r.key !== "string") return `Record ${i} has a key that is neither a string nor null`
  if (typeof r.value !== "string") return `Record ${i} has a value that is not a string`
  if (!isHeaders(r.headers)) return `Record ${i} has headers that are not strings`
  return undefined
}

const toRow = (id: number, value: unknown): OutboxRow => {
  const v = asRecord(value, `outbox row ${id}`) as unknown as OutboxValue
  if (typeof v.topic !== "string" || typeof v.value !== "string") throw new CorruptData(`outbox row ${id} has no topic or value`)
  return { id, topic: v.topic, key: v.key ?? null, value: v.value, headers: v.headers ?? {}, createdAt: v.createdAt }
}

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const env = yield* LmdbEnv
  const { dbs } = env

  const stage = Effect.fn("LmdbOutbox.stage")(function*(records: ReadonlyArray<OutgoingRecord>, options?: { readonly transaction?: string | undefined }) {
    for (const [i, r] of records.entries()) {
      const problem = checkRecord(r, i)
      if (problem !== undefined) return yield* Effect.fail(invalid(problem))
    }
    const raw = options?.transaction
    if (raw !== undefined && !isUuid(raw)) return yield* Effect.fail(invalid(`Transaction id ${JSON.stringify(raw)} is not a UUID`))
    if (records.length === 0) return
    const tx = raw?.toLowerCase()
    const now = yield* Clock.currentTimeMillis
    const values: Array<OutboxValue> = records.map((r) => ({ topic: r.topic, key: r.key, value: r.value, headers: r.headers, createdAt: now }))
    const checkPending = (status: string | undefined) => {
      if (status !== "pending") throw new Abort(new OutboxError({ reason: "TransactionClosed", message: `Transaction ${tx} is ${status ?? "unknown"}, not pending` }))
    }
    const op = (w: WriteCtx) => {
      const first = w.outboxSeq(values.length)
      if (tx === undefined) {
        for (const [i, v] of values.entries()) w.dbs.outbox.putSync(first + i, v)
        w.outboxReady = true
      } else {
        checkPending(dbLookup(w.dbs)(tx)?.status)
        for (const [i, v] of values.entries()) w.dbs.txoutbox.putSync([tx, first + i], v)
      }
    }
    const onError = mapError("stage outbox rows")
    const unit = yield* env.unit
    if (unit === undefined) return yield* env.write(op, onError)
    if (tx !== undefined) yield* env.read(() => checkPending(unitLookup(dbs, unit)(tx)?.status), onError)
    unit.ops.push(op)
  })

  // Rows handed to a publisher and not yet deleted. In memory: one process owns an LMDB folder (as
  // for the broker's folder), and a read instead of a leasing write saves one fsync per batch.
  const claimed = claimedRows(env.path)

  /** Up to `limit` publishable rows, oldest first, that no other relay fiber holds. */
  const claim = (limit: number) =>
    env.read(() => {
      const rows: Array<OutboxRow> = []
      for (const { key, value } of dbs.outbox.getRange({ start: 0 })) {
        if (claimed.has(key)) continue
        rows.push(toRow(key, value))
        if (rows.length >= limit) break
      }
      for (const row of rows) claimed.add(row.id)
      return rows
    }, mapError("claim outbox rows"))

  const release = (rows: ReadonlyArray<OutboxRow>) => Effect.sync(() => rows.forEach((row) => claimed.delete(row.id)))

  const remove = (rows: ReadonlyArray<OutboxRow>) =>
    env.write((w) => {
      for (const row of rows) w.dbs.outbox.removeSync(row.id)
    }, mapError("delete published outbox rows"))

  const process = <E, R>(limit: number, publish: (rows: ReadonlyArray<OutboxRow>) => Effect.Effect<void, E, R>): Effect.Effect<number, OutboxError | E, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        if (!Number.isInteger(limit) || limit < 1) return yield* Effect.fail(invalid(`limit must be a positive integer, got ${limit}`))
        const rows = yield* claim(limit)
        if (rows.length === 0) return 0
        // published or not, the rows are no longer held once this ends; only a delete removes them
        yield* Effect.gen(function*() {
          const published = yield* Effect.result(restore(publish(rows)))
          if (published._tag === "Success") return yield* remove(rows)
          // a partial failure: delete what the broker acknowledged, then fail
          const done = acknowledgedRows(rows, published.failure)
          if (done.length > 0) yield* remove(done)
          return yield* Effect.fail(published.failure)
        }).pipe(Effect.ensuring(release(rows)))
        return rows.length
      })
    ).pipe(Effect.withSpan("LmdbOutbox.process"))

  const pending = env.read(() => dbs.outbox.getKeysCount({ start: 0 }), mapError("count outbox rows")).pipe(Effect.withSpan("LmdbOutbox.pending"))

  const awaitWork = (maxWaitMs: number): Effect.Effect<void> => env.awaitOutbox(maxWaitMs)

  return Outbox.of({ stage, process, pending, awaitWork } satisfies OutboxShape)
})

/**
 * Needs the shared environment (see `Lmdb.layer`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<Outbox, never, LmdbEnv> = Layer.effect(Outbox, make)
