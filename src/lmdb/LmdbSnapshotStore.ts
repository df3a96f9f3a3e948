/**
 * The `SnapshotStore` port on LMDB (see `Lmdb.layer`). Snapshots are keyed
 * `[aggregate, layer, aggregateId]`, so a `find` over one aggregate is a prefix scan of its main-store
 * rows in `aggregateId` order (the order PostgreSQL uses as a tie-break). Conditions are checked
 * against the aggregate's Schema and evaluated in memory with PostgreSQL's jsonb semantics.
 *
 * - Without an ordering, `find` streams in pages of 512 keys and stops at `limit`; with
 *   an ordering it has to collect every match first, then sorts.
 * - Inside a transaction, the rows of its chain override the main store's (innermost wins); inside a
 *   unit of work, the unit's staged puts override both.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option, Stream } from "effect"
import { isUuid } from "../internal/Ids.ts"
import { isJson } from "../internal/Json.ts"
import {
  Abort,
  asRecord,
  CorruptData,
  type Dbs,
  errorMapper,
  HIGH,
  layersOf,
  LmdbEnv,
  MAIN,
  MAIN_LAYERS,
  type SnapshotKey,
  snapshotKey,
  type SnapshotValue,
  type Unit,
  unitLookup,
  type WriteCtx
} from "./internal/Env.ts"
import { compareRecords, evaluate, existing, type FindOptions, prepareFind, type Queryable, type SnapshotRecord, SnapshotStore, SnapshotStoreError, type SnapshotStoreShape } from "../snapshot/SnapshotStore.ts"

/** Keys read per page of a streamed `find`. */
const pageSize = 512

const mapError = (what: string) => errorMapper(what, (f) => new SnapshotStoreError({ reason: f.kind, message: f.message, cause: f.cause }))

const invalid = (reason: "InvalidInput" | "InvalidQuery", message: string) => new SnapshotStoreError({ reason, message })

const toRecord = (key: SnapshotKey, value: unknown): SnapshotRecord => {
  const v = asRecord(value, `snapshot ${key[0]} ${key[2]}`) as unknown as SnapshotValue
  if (typeof v.v !== "number" || typeof v.c !== "number" || typeof v.u !== "number") throw new CorruptData(`snapshot ${key[0]} ${key[2]} has no version or times`)
  return {
    aggregate: key[0],
    aggregateId: key[2],
    version: v.v,
    document: v.d,
    deleted: v.x === true,
    createdAt: v.c,
    updatedAt: v.u,
    transactionId: key[1] === MAIN ? null : key[1]
  }
}

/** The newer of a committed and a staged record of one layer. */
const newer = (a: SnapshotRecord | undefined, b: SnapshotRecord | undefined): SnapshotRecord | undefined =>
  a === undefined ? b : b === undefined ? a : b.version > a.version ? b : a

const putIn = (w: WriteCtx, key: SnapshotKey, value: SnapshotValue): void => {
  const current = w.dbs.snapshots.get(key)
  // an older (or the same) version arriving late never replaces a newer one
  if (current !== undefined && current.v >= value.v) return
  w.dbs.snapshots.putSync(key, value)
  if (key[1] !== MAIN) w.dbs.txwrites.putSync([key[1], "s", key[0], key[2]], true)
}

/** The rows of `aggregate` in one layer that override the main store's: the layer's own (none for the main store) and the unit's staged ones. */
const layerRows = (dbs: Dbs, unit: Unit | undefined, aggregate: string, layer: string, into: Map<string, SnapshotRecord>): void => {
  const mine = new Map<string, SnapshotRecord>()
  if (layer !== MAIN) {
    for (const { key, value } of dbs.snapshots.getRange({ start: [aggregate, layer, ""], end: [aggregate, layer, HIGH] })) {
      mine.set(key[2], toRecord(key, value))
    }
  }
  if (unit !== undefined && unit.snapshots.size > 0) {
    const prefix = snapshotKey(aggregate, layer, "")
    for (const [k, record] of unit.snapshots) {
      if (k.startsWith(prefix)) mine.set(record.aggregateId, newer(mine.get(record.aggregateId), record)!)
    }
  }
  for (const [id, record] of mine) into.set(id, record)
}

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const env = yield* LmdbEnv
  const { dbs } = env

  const layersFor = (unit: Unit | undefined, tx: string | undefined): ReadonlyArray<string> => {
    if (tx === undefined) return MAIN_LAYERS
    const layers = layersOf(unitLookup(dbs, unit), tx)
    if (layers === undefined) throw new Abort(invalid("InvalidInput", `Unknown transaction ${tx}`))
    return layers
  }

  const put = Effect.fn("LmdbSnapshotStore.put")(function*(record: SnapshotRecord) {
    if (!isUuid(record.aggregateId)) return yield* Effect.fail(invalid("InvalidInput", `Aggregate id ${JSON.stringify(record.aggregateId)} is not a UUID`))
    if (typeof record.aggregate !== "string" || record.aggregate.length === 0) return yield* Effect.fail(invalid("InvalidInput", "The aggregate name is empty"))
    if (record.transactionId !== null && !isUuid(record.transactionId)) return yield* Effect.fail(invalid("InvalidInput", "Transaction id is not a UUID"))
    if (!Number.isInteger(record.version) || record.version < 1) return yield* Effect.fail(invalid("InvalidInput", `Invalid version ${record.version}`))
    if (!Number.isFinite(record.createdAt) || !Number.isFinite(record.updatedAt)) return yield* Effect.fail(invalid("InvalidInput", "The snapshot times are not numbers"))
    if (!isJson(record.document)) return yield* Effect.fail(invalid("InvalidInput", "The snapshot document is not JSON"))
    const aggregateId = record.aggregateId.toLowerCase()
    const layer = record.transactionId?.toLowerCase() ?? MAIN
    const key: SnapshotKey = [record.aggregate, layer, aggregateId]
    const value: SnapshotValue = { v: record.version, d: record.document, x: record.deleted === true, c: record.createdAt, u: record.updatedAt }
    const op = (w: WriteCtx) => putIn(w, key, value)
    const unit = yield* env.unit
    if (unit === undefined) return yield* env.write(op, mapError("put snapshot"))
    unit.ops.push(op)
    const k = snapshotKey(record.aggregate, layer, aggregateId)
    const staged: SnapshotRecord = { ...record, aggregateId, transactionId: layer === MAIN ? null : layer, deleted: value.x }
    unit.snapshots.set(k, newer(unit.snapshots.get(k), staged)!)
  })

  const getOption = Effect.fn("LmdbSnapshotStore.getOption")(function*(
    aggregate: string,
    aggregateId: string,
    options?: { readonly transaction?: string | undefined }
  ) {
    if (!isUuid(aggregateId)) return yield* Effect.fail(invalid("InvalidInput", `Aggregate id ${JSON.stringify(aggregateId)} is not a UUID`))
    const tx = options?.transaction
    if (tx !== undefined && !isUuid(tx)) return yield* Effect.fail(invalid("InvalidInput", `Transaction id ${JSON.stringify(tx)} is not a UUID`))
    const id = aggregateId.toLowerCase()
    const unit = yield* env.unit
    return yield* env.read(() => {
      const layers = layersFor(unit, tx?.toLowerCase())
      for (let i = layers.length - 1; i >= 0; i--) {
        const key: SnapshotKey = [aggregate, layers[i]!, id]
        const stored = dbs.snapshots.get(key)
        const found = newer(stored === undefined ? undefined : toRecord(key, stored), unit?.snapshots.get(snapshotKey(aggregate, layers[i]!, id)))
        if (found !== undefined) return Option.some(found)
      }
      return Option.none<SnapshotRecord>()
    }, mapError("get snapshot"))
  })

  const get = Effect.fn("LmdbSnapshotStore.get")(function*(aggregate: string, aggregateId: string, options?: { readonly transaction?: string | undefined }) {
    return yield* existing(aggregate, aggregateId, yield* getOption(aggregate, aggregateId, options))
  })

  const find = (aggregate: Queryable, options: FindOptions): Stream.Stream<SnapshotRecord, SnapshotStoreError> =>
    Stream.unwrap(Effect.gen(function*() {
      const prepared = prepareFind(aggregate, options)
      if (!prepared.ok) return yield* Effect.fail(invalid("InvalidQuery", prepared.message))
      const ordering = prepared.ordering
      const limit = options.limit ?? Number.POSITIVE_INFINITY
      const tx = options.transaction
      if (tx !== undefined && !isUuid(tx)) return yield* Effect.fail(invalid("InvalidInput", `Transaction id ${JSON.stringify(tx)} is not a UUID`))
      const unit = yield* env.unit
      const onError = mapError("find snapshots")
      const name = aggregate.name
      const includeDeleted = options.includeDeleted === true
      const matches = (r: SnapshotRecord) => (includeDeleted || !r.deleted) && evaluate(options.condition, r) === true

      // rows that override the main store's: the chain's (innermost wins) and the unit's staged ones
      const overrides = yield* env.read(() => {
        const map = new Map<string, SnapshotRecord>()
        for (const layer of layersFor(unit, tx?.toLowerCase())) layerRows(dbs, unit, name, layer, map)
        return [...map.values()].sort((a, b) => (a.aggregateId < b.aggregateId ? -1 : a.aggregateId > b.aggregateId ? 1 : 0))
      }, onError)

      // one page of the main store merged with the overrides, in aggregateId order; with an
      // ordering every match is needed, so the limit applies only after sorting
      const cap = ordering.length === 0 ? limit : Number.POSITIVE_INFINITY
      const cursor = { after: undefined as string | undefined, next: 0, done: false, emitted: 0 }
      const page = (): Array<SnapshotRecord> => {
        const out: Array<SnapshotRecord> = []
        const emit = (r: SnapshotRecord) => {
          if (cursor.emitted < cap && matches(r)) {
            out.push(r)
            cursor.emitted++
          }
        }
        const range = dbs.snapshots.getRange({
          start: [name, MAIN, cursor.after ?? ""],
          end: [name, MAIN, HIGH],
          exclusiveStart: cursor.after !== undefined,
          limit: pageSize
        })
        let read = 0
        for (const { key, value } of range) {
          read++
          cursor.after = key[2]
          while (cursor.next < overrides.length && overrides[cursor.next]!.aggregateId < key[2]) emit(overrides[cursor.next++]!)
          const override = overrides[cursor.next]
          if (override !== undefined && override.aggregateId === key[2]) {
            cursor.next++
            const main = toRecord(key, value)
            // a staged main-store put only wins when newer; any transaction's row wins
            emit(override.transactionId === null ? newer(main, override)! : override)
          } else {
            emit(toRecord(key, value))
          }
          if (cursor.emitted >= cap) break
        }
        if (read < pageSize || cursor.emitted >= cap) {
          while (cursor.next < overrides.length && cursor.emitted < cap) emit(overrides[cursor.next++]!)
          cursor.done = true
        }
        return out
      }

      if (ordering.length === 0) {
        if (limit === 0) return Stream.empty
        return Stream.paginate(undefined, () =>
          env.read(() => {
            const rows = page()
            return [rows, cursor.done ? Option.none() : Option.some(undefined)] as const
          }, onError))
      }
      // an ordering needs every match before the first can be emitted
      const all = yield* env.read(() => {
        const out: Array<SnapshotRecord> = []
        while (!cursor.done) for (const r of page()) out.push(r)
        // stable sort: ties keep aggregateId order, PostgreSQL's tie-break
        return out.sort(compareRecords(ordering)).slice(0, limit)
      }, onError)
      return Stream.fromIterable(all)
    })).pipe(Stream.withSpan("LmdbSnapshotStore.find"))

  return SnapshotStore.of({ put, get, getOption, find } satisfies SnapshotStoreShape)
})

/**
 * Needs the shared environment (see `Lmdb.layer`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<SnapshotStore, never, LmdbEnv> = Layer.effect(SnapshotStore, make)
