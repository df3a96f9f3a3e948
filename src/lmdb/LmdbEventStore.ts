/**
 * The `EventStore` port on LMDB (see `Lmdb.layer`).
 *
 * - Append checks the stream's version (kept per `(aggregateId, layer)` in the `streams` database)
 *   inside the write transaction, so the check and the write are one atomic step.
 * - Global positions come from a counter assigned inside the write transaction: LMDB has one writer
 *   at a time, so positions are gap-free and increase in commit order, and `readAll` is a plain range
 *   scan of the `positions` index after the checkpoint (the last position read, a decimal string).
 * - Events of an open minos transaction have position 0; committing them into the main store gives
 *   them new positions (after everything a global reader already read).
 * - Inside a unit of work, reads see the unit's staged appends.
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import {
  Abort,
  asRecord,
  CorruptData,
  dbLookup,
  type Dbs,
  errorMapper,
  type EventValue,
  HIGH,
  layerKey,
  layersOf,
  LmdbEnv,
  MAIN,
  MAIN_LAYERS,
  MAX_VERSION,
  type TxLookup,
  type Unit,
  unitLookup,
  type WriteCtx
} from "./internal/Env.ts"
import { type AppendInput, type AppendResult, EventStore, EventStoreError, type EventStoreShape, type StoredEvent, checkAppend } from "../eventstore/EventStore.ts"
import { isUuid } from "../internal/Ids.ts"

/** Transactions in these states hold their versions. */
const CLAIMING: ReadonlySet<string> = new Set(["reserving", "reserved", "committing"])

const mapError = (what: string, aggregateId?: string) =>
  errorMapper(what, (f) => new EventStoreError({ reason: f.kind, message: f.message, cause: f.cause, ...(aggregateId === undefined ? {} : { aggregateId }) }))

const invalid = (message: string, aggregateId?: string) =>
  new EventStoreError({ reason: "InvalidInput", message, ...(aggregateId === undefined ? {} : { aggregateId }) })

const closed = (tx: string, status: string, aggregateId: string) =>
  new EventStoreError({ reason: "TransactionClosed", message: `Transaction ${tx} is ${status}, not pending`, aggregateId })

const toStoredEvent = (aggregateId: string, txKey: string, version: number, value: unknown): StoredEvent => {
  const v = asRecord(value, `event ${aggregateId}/${version}`) as unknown as EventValue
  if (typeof v.t !== "string" || typeof v.c !== "number") throw new CorruptData(`event ${aggregateId}/${version} has no type or time`)
  return {
    position: v.p,
    aggregateId,
    aggregate: v.a,
    version,
    type: v.t,
    data: v.d,
    metadata: v.m ?? {},
    transactionId: txKey === MAIN ? null : txKey,
    createdAt: v.c
  }
}

/** The stream's events of one layer with version ≥ `from`, in version order. */
const layerEvents = (dbs: Dbs, aggregateId: string, txKey: string, from: number): Array<StoredEvent> => {
  const out: Array<StoredEvent> = []
  for (const { key, value } of dbs.events.getRange({ start: [aggregateId, txKey, from], end: [aggregateId, txKey, MAX_VERSION], inclusiveEnd: true })) {
    out.push(toStoredEvent(aggregateId, txKey, key[2], value))
  }
  return out
}

/** The layers a write into `tx` sees; throws TransactionClosed unless `tx` is pending. */
const pendingLayers = (lookup: TxLookup, tx: string, aggregateId: string): ReadonlyArray<string> => {
  const layers = layersOf(lookup, tx)
  if (layers === undefined) throw new Abort(closed(tx, "unknown", aggregateId))
  const status = lookup(tx)!.status
  if (status !== "pending") throw new Abort(closed(tx, status, aggregateId))
  return layers
}

/** The layers a read inside `tx` sees; an unknown transaction is TransactionClosed (as on PostgreSQL). */
const readLayers = (lookup: TxLookup, tx: string | undefined, aggregateId: string): ReadonlyArray<string> => {
  if (tx === undefined) return MAIN_LAYERS
  const layers = layersOf(lookup, tx)
  if (layers === undefined) throw new Abort(new EventStoreError({ reason: "TransactionClosed", message: `Unknown transaction ${tx}`, aggregateId }))
  return layers
}

/** The stream's version in the view of `layers` (committed, plus the unit's staged appends). */
const versionIn = (dbs: Dbs, unit: Unit | undefined, aggregateId: string, layers: ReadonlyArray<string>): number => {
  let version = 0
  for (const layer of layers) {
    const committed = dbs.streams.get([aggregateId, layer]) ?? 0
    const staged = unit?.streams.get(layerKey(aggregateId, layer)) ?? 0
    version = Math.max(version, committed, staged)
  }
  return version
}

/** The append itself, inside the write transaction: checks the transaction and the version, then writes. */
const appendIn = (
  w: WriteCtx,
  aggregateId: string,
  tx: string | undefined,
  expectedVersion: number,
  aggregate: string,
  values: ReadonlyArray<EventValue>
): void => {
  const { events, positions, streams, txwrites } = w.dbs
  const layers = tx === undefined ? MAIN_LAYERS : pendingLayers(dbLookup(w.dbs), tx, aggregateId)
  const current = versionIn(w.dbs, undefined, aggregateId, layers)
  if (current !== expectedVersion) {
    throw new Abort(
      new EventStoreError({ reason: "Conflict", message: `${aggregate} ${aggregateId} is at version ${current}, not ${expectedVersion}`, aggregateId })
    )
  }
  const lookup = dbLookup(w.dbs)
  const parent = tx === undefined ? null : lookup(tx)!.parent
  // versions a reserved sibling (a transaction committing into the same destination) holds are
  // refused: its commit must not fail for a collision
  for (const [, other] of streams.getKeys({ start: [aggregateId], end: [aggregateId, HIGH] })) {
    if (other === MAIN || other === tx) continue
    const t = lookup(other)
    if (t === undefined || t.parent !== parent || !CLAIMING.has(t.status)) continue
    const n = events.getKeysCount({ start: [aggregateId, other, expectedVersion + 1], end: [aggregateId, other, expectedVersion + values.length], inclusiveEnd: true })
    if (n > 0) {
      throw new Abort(new EventStoreError({
        reason: "Conflict",
        message: `${aggregate} ${aggregateId} version ${expectedVersion + 1} is claimed by a reserved transaction; decide again after it commits or is rejected`,
        aggregateId
      }))
    }
  }
  const layer = tx ?? MAIN
  const first = tx === undefined ? w.positions(values.length) : 0
  for (let i = 0; i < values.length; i++) {
    const version = expectedVersion + 1 + i
    if (tx === undefined) {
      events.putSync([aggregateId, MAIN, version], { ...values[i]!, p: first + i })
      positions.putSync(first + i, [aggregateId, version])
    } else {
      events.putSync([aggregateId, layer, version], values[i]!)
    }
  }
  streams.putSync([aggregateId, layer], expectedVersion + values.length)
  if (tx !== undefined) txwrites.putSync([tx, "e", aggregateId], true)
}

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const env = yield* LmdbEnv
  const { dbs } = env

  const append = Effect.fn("LmdbEventStore.append")(function*(input: AppendInput) {
    const problem = checkAppend(input)
    if (problem !== undefined) return yield* Effect.fail(invalid(problem, isUuid(input.aggregateId) ? input.aggregateId : undefined))
    const aggregateId = input.aggregateId.toLowerCase()
    const tx = input.transaction?.toLowerCase()
    const { aggregate, expectedVersion } = input
    const values: Array<EventValue> = input.events.map((e) => ({ p: 0, a: aggregate, t: e.type, d: e.data, m: e.metadata ?? {}, c: input.now }))
    const result: AppendResult = { aggregateId: input.aggregateId, fromVersion: expectedVersion + 1, toVersion: expectedVersion + values.length }
    const onError = mapError("append", input.aggregateId)
    const op = (w: WriteCtx) => appendIn(w, aggregateId, tx, expectedVersion, aggregate, values)

    const unit = yield* env.unit
    if (unit === undefined) {
      yield* env.write(op, onError)
      return result
    }
    // fail fast against the committed and staged view; the write transaction checks again
    yield* env.read(() => {
      const layers = tx === undefined ? MAIN_LAYERS : pendingLayers(unitLookup(dbs, unit), tx, aggregateId)
      const current = versionIn(dbs, unit, aggregateId, layers)
      if (current !== expectedVersion) {
        throw new Abort(new EventStoreError({ reason: "Conflict", message: `${aggregate} ${aggregateId} is at version ${current}, not ${expectedVersion}`, aggregateId }))
      }
    }, onError)
    unit.ops.push(op)
    const key = layerKey(aggregateId, tx ?? MAIN)
    unit.streams.set(key, result.toVersion)
    const staged = unit.events.get(key) ?? []
    for (const [i, v] of values.entries()) staged.push(toStoredEvent(aggregateId, tx ?? MAIN, expectedVersion + 1 + i, v))
    unit.events.set(key, staged)
    return result
  })

  const readStream = Effect.fn("LmdbEventStore.readStream")(function*(
    aggregateId: string,
    options?: { readonly afterVersion?: number | undefined; readonly transaction?: string | undefined }
  ) {
    if (!isUuid(aggregateId)) return yield* Effect.fail(invalid(`Aggregate id ${JSON.stringify(aggregateId)} is not a UUID`))
    const after = options?.afterVersion ?? 0
    if (!Number.isFinite(after)) return yield* Effect.fail(invalid(`afterVersion must be a number, got ${after}`, aggregateId))
    const tx = options?.transaction
    if (tx !== undefined && !isUuid(tx)) return yield* Effect.fail(invalid(`Transaction id ${JSON.stringify(tx)} is not a UUID`, aggregateId))
    const id = aggregateId.toLowerCase()
    const from = Math.max(0, Math.floor(after)) + 1
    const unit = yield* env.unit
    return yield* env.read(() => {
      const layers = readLayers(unitLookup(dbs, unit), tx?.toLowerCase(), aggregateId)
      if (layers.length === 1 && unit?.events.has(layerKey(id, MAIN)) !== true) return layerEvents(dbs, id, MAIN, from)
      // innermost layer wins per version (and a staged event over a committed one)
      const byVersion = new Map<number, StoredEvent>()
      for (const layer of layers) {
        for (const e of layerEvents(dbs, id, layer, from)) byVersion.set(e.version, e)
        for (const e of unit?.events.get(layerKey(id, layer)) ?? []) if (e.version >= from) byVersion.set(e.version, e)
      }
      return [...byVersion.values()].sort((a, b) => a.version - b.version)
    }, mapError("read stream", aggregateId))
  })

  const streamVersion = Effect.fn("LmdbEventStore.streamVersion")(function*(aggregateId: string, options?: { readonly transaction?: string | undefined }) {
    if (!isUuid(aggregateId)) return yield* Effect.fail(invalid(`Aggregate id ${JSON.stringify(aggregateId)} is not a UUID`))
    const tx = options?.transaction
    if (tx !== undefined && !isUuid(tx)) return yield* Effect.fail(invalid(`Transaction id ${JSON.stringify(tx)} is not a UUID`, aggregateId))
    const unit = yield* env.unit
    return yield* env.read(
      () => versionIn(dbs, unit, aggregateId.toLowerCase(), readLayers(unitLookup(dbs, unit), tx?.toLowerCase(), aggregateId)),
      mapError("stream version", aggregateId)
    )
  })

  const readAll = Effect.fn("LmdbEventStore.readAll")(function*(checkpoint: string, limit: number) {
    if (typeof checkpoint !== "string" || !/^\d{1,15}$/.test(checkpoint)) return yield* Effect.fail(invalid(`Malformed checkpoint ${JSON.stringify(checkpoint)}`))
    if (!Number.isInteger(limit) || limit < 1) return yield* Effect.fail(invalid(`limit must be a positive integer, got ${limit}`))
    const after = Number(checkpoint)
    return yield* env.read(() => {
      const events: Array<StoredEvent> = []
      let last = after
      for (const { key, value } of dbs.positions.getRange({ start: after + 1, limit })) {
        if (!Array.isArray(value)) throw new CorruptData(`position ${key} has no event reference`)
        const [aggregateId, version] = value
        const stored = dbs.events.get([aggregateId, MAIN, version])
        if (stored === undefined) throw new CorruptData(`position ${key} points at a missing event ${aggregateId}/${version}`)
        events.push({ ...toStoredEvent(aggregateId, MAIN, version, stored), position: key })
        last = key
      }
      return { events, checkpoint: events.length === 0 ? checkpoint : String(last) }
    }, mapError("read all"))
  })

  const head = env.read(() => String(dbs.meta.get("position") ?? 0), mapError("head")).pipe(Effect.withSpan("LmdbEventStore.head"))

  return EventStore.of({ append, readStream, streamVersion, readAll, head } satisfies EventStoreShape)
})

/**
 * Needs the shared environment (see `Lmdb.layer`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<EventStore, never, LmdbEnv> = Layer.effect(EventStore, make)
