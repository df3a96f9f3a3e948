/**
 * The `ProjectionStore` port on LMDB (`pmarks`, `pparked`, `pstate` of the storage environment).
 *
 * Inside a unit of work, `lock` reads the mark row (the unit's own writes first) and stages a check
 * that the row's revision is unchanged at commit; `setMark` and `park` bump the revision. So of two
 * units that applied or parked events of one aggregate concurrently, the second to commit fails
 * with a retryable `Conflict` and writes nothing. `putState` checks its expected revision the same
 * way.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option } from "effect"
import { Abort, asRecord, CorruptData, errorMapper, LmdbEnv, type MarkValue, type ParkedValue, type StateValue, type WriteCtx } from "./internal/Env.ts"
import {
  checkKey,
  checkValue,
  type Parked,
  ProjectionStore,
  ProjectionStoreError,
  type ProjectionStoreShape,
  type StateRecord
} from "../readmodel/ProjectionStore.ts"

const mapError = (what: string) => errorMapper(what, (f) => new ProjectionStoreError({ reason: f.kind, message: f.message, cause: f.cause }))

const invalid = (message: string) => new ProjectionStoreError({ reason: "InvalidInput", message })
const conflict = (message: string) => new ProjectionStoreError({ reason: "Conflict", message })

const markKey = (projection: string, aggregateId: string) => `${projection}\u0000${aggregateId}`
const parkedKey = (projection: string, aggregateId: string, version: number) => `${projection}\u0000${aggregateId}\u0000${version}`

const NONE: MarkValue = { v: 0, r: 0 }

const decodeMark = (value: unknown, what: string): MarkValue => {
  if (value === undefined) return NONE
  const r = asRecord(value, what)
  if (typeof r["v"] !== "number" || typeof r["r"] !== "number") throw new CorruptData(`${what} has no version`)
  return r as unknown as MarkValue
}

const decodeParked = (value: unknown, what: string): ParkedValue => {
  const r = asRecord(value, what)
  if (typeof r["t"] !== "number" || !("e" in r)) throw new CorruptData(`${what} has no event`)
  return r as unknown as ParkedValue
}

const decodeState = (value: unknown, what: string): StateValue | undefined => {
  if (value === undefined) return undefined
  const r = asRecord(value, what)
  if (typeof r["r"] !== "number" || !("v" in r)) throw new CorruptData(`${what} has no revision`)
  return r as unknown as StateValue
}

const check = (problem: string | undefined) => (problem === undefined ? Effect.void : Effect.fail(invalid(problem)))

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const env = yield* LmdbEnv
  const { dbs } = env

  const committedMark = (projection: string, aggregateId: string) =>
    decodeMark(dbs.pmarks.get([projection, aggregateId]), `mark ${projection}/${aggregateId}`)

  /** The row as the unit sees it. */
  const currentMark = (projection: string, aggregateId: string) =>
    Effect.flatMap(env.unit, (unit) => {
      const mine = unit?.marks.get(markKey(projection, aggregateId))
      return mine !== undefined ? Effect.succeed(mine) : env.read(() => committedMark(projection, aggregateId), mapError("read mark"))
    })

  const lock = Effect.fn("LmdbProjectionStore.lock")(function*(projection: string, aggregateId: string) {
    yield* check(checkKey(projection, aggregateId))
    const row = yield* currentMark(projection, aggregateId)
    const unit = yield* env.unit
    const key = markKey(projection, aggregateId)
    if (unit !== undefined && !unit.locked.has(key)) {
      unit.locked.add(key)
      // the committed revision as of now must still be there at commit
      const base = (yield* env.read(() => committedMark(projection, aggregateId), mapError("read mark"))).r
      if (!unit.marks.has(key)) unit.marks.set(key, row)
      unit.ops.unshift((w) => {
        const now = decodeMark(w.dbs.pmarks.get([projection, aggregateId]), `mark ${projection}/${aggregateId}`)
        if (now.r !== base) throw new Abort(conflict(`Projection ${projection}: ${aggregateId} was written concurrently; retry`))
      })
    }
    return row.v
  })

  /** Bumps the row's revision in the unit (or at once outside one), with `version` as the new mark. */
  const touch = (projection: string, aggregateId: string, version: number | undefined) =>
    Effect.gen(function*() {
      const unit = yield* env.unit
      if (unit === undefined) {
        return yield* env.write((w) => {
          const now = decodeMark(w.dbs.pmarks.get([projection, aggregateId]), `mark ${projection}/${aggregateId}`)
          w.dbs.pmarks.putSync([projection, aggregateId], { v: version ?? now.v, r: now.r + 1 })
        }, mapError("write mark"))
      }
      const key = markKey(projection, aggregateId)
      const row = unit.marks.get(key) ?? (yield* currentMark(projection, aggregateId))
      const next: MarkValue = { v: version ?? row.v, r: row.r + 1 }
      unit.marks.set(key, next)
      unit.ops.push((w) => {
        const now = decodeMark(w.dbs.pmarks.get([projection, aggregateId]), `mark ${projection}/${aggregateId}`)
        w.dbs.pmarks.putSync([projection, aggregateId], { v: next.v, r: now.r + 1 })
      })
    })

  const setMark = Effect.fn("LmdbProjectionStore.setMark")(function*(projection: string, aggregateId: string, version: number) {
    yield* check(checkKey(projection, aggregateId, version))
    yield* touch(projection, aggregateId, version)
  })

  const mark = Effect.fn("LmdbProjectionStore.mark")(function*(projection: string, aggregateId: string) {
    yield* check(checkKey(projection, aggregateId))
    return (yield* currentMark(projection, aggregateId)).v
  })

  const park = Effect.fn("LmdbProjectionStore.park")(function*(entry: Parked) {
    yield* check(checkKey(entry.projection, entry.aggregateId, entry.version) ?? checkValue(entry.event) ??
      (Number.isFinite(entry.parkedAt) ? undefined : "parkedAt is not a number"))
    const value: ParkedValue = { e: JSON.parse(JSON.stringify(entry.event)), t: entry.parkedAt }
    const dbKey: [string, string, number] = [entry.projection, entry.aggregateId, entry.version]
    const put = (w: WriteCtx) => {
      if (w.dbs.pparked.get(dbKey) === undefined) w.dbs.pparked.putSync(dbKey, value)
    }
    const unit = yield* env.unit
    if (unit === undefined) return yield* env.write(put, mapError("park"))
    const key = parkedKey(entry.projection, entry.aggregateId, entry.version)
    const existing = unit.parked.get(key)
    if (existing === undefined) unit.parked.set(key, (yield* committedParked(dbKey)) ?? value)
    else if (existing === null) unit.parked.set(key, value)
    unit.ops.push(put)
    yield* touch(entry.projection, entry.aggregateId, undefined)
  })

  const committedParked = (dbKey: [string, string, number]) =>
    env.read(() => {
      const v = dbs.pparked.get(dbKey)
      return v === undefined ? undefined : decodeParked(v, `parked ${dbKey.join("/")}`)
    }, mapError("read parked"))

  const unpark = Effect.fn("LmdbProjectionStore.unpark")(function*(projection: string, aggregateId: string, version: number) {
    yield* check(checkKey(projection, aggregateId, version))
    const dbKey: [string, string, number] = [projection, aggregateId, version]
    const toParked = (v: ParkedValue): Parked => ({ projection, aggregateId, version, event: v.e, parkedAt: v.t })
    const unit = yield* env.unit
    if (unit === undefined) {
      return yield* env.write((w) => {
        const v = w.dbs.pparked.get(dbKey)
        if (v === undefined) return Option.none<Parked>()
        w.dbs.pparked.removeSync(dbKey)
        return Option.some(toParked(decodeParked(v, `parked ${dbKey.join("/")}`)))
      }, mapError("unpark"))
    }
    const key = parkedKey(projection, aggregateId, version)
    const mine = unit.parked.get(key)
    const found = mine === null ? undefined : mine ?? (yield* committedParked(dbKey))
    if (found === undefined) return Option.none<Parked>()
    unit.parked.set(key, null)
    unit.ops.push((w) => void w.dbs.pparked.removeSync(dbKey))
    return Option.some(toParked(found))
  })

  /** Parked events of `projection` as the unit sees them, by aggregate id and version. */
  const allParked = (projection: string, limit: number) =>
    Effect.gen(function*() {
      const unit = yield* env.unit
      const staged = new Map<string, ParkedValue | null>()
      if (unit !== undefined) {
        const prefix = `${projection}\u0000`
        for (const [k, v] of unit.parked) if (k.startsWith(prefix)) staged.set(k, v)
      }
      const out = yield* env.read(() => {
        const found: Array<Parked> = []
        for (const { key, value } of dbs.pparked.getRange({ start: [projection] })) {
          if (key[0] !== projection) break
          const k = parkedKey(key[0], key[1], key[2])
          if (staged.has(k)) continue
          const v = decodeParked(value, `parked ${k}`)
          found.push({ projection, aggregateId: key[1], version: key[2], event: v.e, parkedAt: v.t })
          if (staged.size === 0 && found.length >= limit) break
        }
        return found
      }, mapError("parked"))
      for (const [k, v] of staged) {
        if (v === null) continue
        const [, aggregateId, version] = k.split("\u0000")
        out.push({ projection, aggregateId: aggregateId!, version: Number(version), event: v.e, parkedAt: v.t })
      }
      if (staged.size > 0) out.sort((a, b) => Buffer.compare(Buffer.from(a.aggregateId), Buffer.from(b.aggregateId)) || a.version - b.version)
      return out.slice(0, limit)
    })

  const parked = Effect.fn("LmdbProjectionStore.parked")(function*(projection: string, options?: { readonly limit?: number | undefined }) {
    yield* check(checkKey(projection))
    const limit = options?.limit ?? 1000
    if (!Number.isSafeInteger(limit) || limit < 0) return yield* Effect.fail(invalid(`limit must be a non-negative integer, got ${limit}`))
    return yield* allParked(projection, limit)
  })

  const countParked = Effect.fn("LmdbProjectionStore.countParked")(function*(projection: string) {
    yield* check(checkKey(projection))
    return (yield* allParked(projection, Number.MAX_SAFE_INTEGER)).length
  })

  const getState = Effect.fn("LmdbProjectionStore.getState")(function*(key: string) {
    yield* check(checkKey(key))
    const unit = yield* env.unit
    const mine = unit?.states.get(key)
    const found = mine ?? (yield* env.read(() => decodeState(dbs.pstate.get(key), `state ${key}`), mapError("getState")))
    return found === undefined ? Option.none<StateRecord>() : Option.some({ value: found.v, revision: found.r })
  })

  const putState = Effect.fn("LmdbProjectionStore.putState")(function*(key: string, value: unknown, expectedRevision: number) {
    yield* check(checkKey(key) ?? checkValue(value) ??
      (Number.isSafeInteger(expectedRevision) && expectedRevision >= 0 ? undefined : `expectedRevision must be a non-negative integer, got ${expectedRevision}`))
    const next: StateValue = { v: JSON.parse(JSON.stringify(value)), r: expectedRevision + 1 }
    const put = (w: WriteCtx) => {
      const now = decodeState(w.dbs.pstate.get(key), `state ${key}`)
      if ((now?.r ?? 0) !== expectedRevision) throw new Abort(conflict(`Projection state ${key} is not at revision ${expectedRevision}`))
      w.dbs.pstate.putSync(key, next)
    }
    const unit = yield* env.unit
    if (unit === undefined) {
      yield* env.write(put, mapError("putState"))
      return next.r
    }
    const seen = unit.states.get(key)?.r ?? (yield* env.read(() => decodeState(dbs.pstate.get(key), `state ${key}`), mapError("getState")))?.r ?? 0
    if (seen !== expectedRevision) return yield* Effect.fail(conflict(`Projection state ${key} is not at revision ${expectedRevision}`))
    unit.states.set(key, next)
    unit.ops.push(put)
    return next.r
  })

  const clear = Effect.fn("LmdbProjectionStore.clear")(function*(projection: string) {
    yield* check(checkKey(projection))
    const op = (w: WriteCtx) => {
      for (const { key } of w.dbs.pmarks.getRange({ start: [projection] })) {
        if (key[0] !== projection) break
        w.dbs.pmarks.removeSync(key)
      }
      for (const { key } of w.dbs.pparked.getRange({ start: [projection] })) {
        if (key[0] !== projection) break
        w.dbs.pparked.removeSync(key)
      }
    }
    const unit = yield* env.unit
    if (unit === undefined) return yield* env.write(op, mapError("clear"))
    const prefix = `${projection}\u0000`
    for (const k of [...unit.marks.keys()]) if (k.startsWith(prefix)) unit.marks.set(k, NONE)
    for (const k of [...unit.parked.keys()]) if (k.startsWith(prefix)) unit.parked.set(k, null)
    unit.ops.push(op)
  })

  return ProjectionStore.of({ lock, setMark, mark, park, unpark, parked, countParked, getState, putState, clear } satisfies ProjectionStoreShape)
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<ProjectionStore, never, LmdbEnv> = Layer.effect(ProjectionStore, make)
