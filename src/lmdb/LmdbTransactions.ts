/**
 * The `Transactions` port on LMDB (see `Lmdb.layer`). A status change, its collision check and the
 * moving of the writes happen in ONE LMDB write transaction, checked against `transitions` there:
 * LMDB has a single writer, so two siblings can never both pass the collision check.
 *
 * - `reserve` collides on a version of the transaction's streams already in the destination view
 *   (the parent's chain and the main store) or written by a sibling that is reserving, reserved or
 *   committing. A collision rejects the transaction (status `rejected`, writes discarded, both
 *   committed) and fails with `Conflict`.
 * - `commit` reserves a pending transaction first, then moves its events (new global positions in
 *   the main store), snapshots (when newer than the destination's) and outbox rows (publishable in
 *   the main store) into the destination. The destination transaction must still be pending.
 * - Called inside a unit of work, the operations are staged like every other write: the returned
 *   record is what the unit will write, and any refusal at commit (a collision included) fails the
 *   whole unit, so then nothing of it is written, not even the rejection.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Layer } from "effect"
import {
  Abort,
  chainOf,
  dbLookup,
  type Dbs,
  errorMapper,
  HIGH,
  layersOf,
  LmdbEnv,
  MAIN,
  MAIN_LAYERS,
  MAX_VERSION,
  type TxLookup,
  type TxValue,
  unitLookup,
  type WriteCtx
} from "./internal/Env.ts"
import { isUuid, NIL } from "../internal/Ids.ts"
import {
  TransactionError,
  type TransactionRecord,
  Transactions,
  type TransactionsShape,
  TransactionStatus,
  transitions
} from "../transaction/Transactions.ts"

const mapError = (id: string, what: string) =>
  errorMapper(what, (f) => new TransactionError({ reason: f.kind === "Unavailable" ? "Unavailable" : "Unknown", transaction: id, message: f.message, cause: f.cause }))

const error = (id: string, reason: TransactionError["reason"], message: string) => new TransactionError({ reason, transaction: id, message })
const notFound = (id: string) => error(id, "NotFound", `Unknown transaction ${id}`)

const toRecord = (id: string, v: TxValue): TransactionRecord => ({ id, parent: v.parent, status: v.status, createdAt: v.createdAt, updatedAt: v.updatedAt })

const statuses = TransactionStatus.literals
/** Siblings in these states have claimed their versions. */
const claiming: ReadonlySet<string> = new Set(["reserving", "reserved", "committing"])

type Outcome = { readonly ok: true; readonly record: TxValue } | { readonly ok: false; readonly error: TransactionError }

// ---------------------------------------------------------------------------------------------
// inside the write transaction

const setStatus = (w: WriteCtx, id: string, current: TxValue, to: TransactionStatus, now: number): TxValue => {
  if (!transitions[current.status].includes(to)) throw new Abort(error(id, "IllegalTransition", `Transaction ${id} cannot move from ${current.status} to ${to}`))
  const next: TxValue = { ...current, status: to, updatedAt: now }
  w.dbs.txstatus.removeSync([current.status, current.updatedAt, id])
  w.dbs.transactions.putSync(id, next)
  w.dbs.txstatus.putSync([to, now, id], true)
  return next
}

/** Aggregates whose streams the transaction wrote. */
const eventWrites = (dbs: Dbs, id: string): Array<string> => Array.from(dbs.txwrites.getKeys({ start: [id, "e"], end: [id, "e", HIGH] }), (k) => k[2]!)

/** `[aggregate, aggregateId]` of the transaction's snapshots. */
const snapshotWrites = (dbs: Dbs, id: string): Array<readonly [string, string]> =>
  Array.from(dbs.txwrites.getKeys({ start: [id, "s"], end: [id, "s", HIGH] }), (k) => [k[2]!, k[3]!] as const)

/** The versions the transaction wrote in one stream, ascending. */
const versionsOf = (dbs: Dbs, aggregateId: string, id: string): Array<number> =>
  Array.from(dbs.events.getKeys({ start: [aggregateId, id, 0], end: [aggregateId, id, MAX_VERSION], inclusiveEnd: true }), (k) => k[2])

const countIn = (dbs: Dbs, aggregateId: string, layer: string, lo: number, hi: number): number =>
  dbs.events.getKeysCount({ start: [aggregateId, layer, lo], end: [aggregateId, layer, hi], inclusiveEnd: true })

/** How many of the transaction's stream versions the destination view or a claiming sibling already holds. */
const collisions = (dbs: Dbs, id: string, record: TxValue): number => {
  const lookup = dbLookup(dbs)
  const destination = record.parent === null ? MAIN_LAYERS : layersOf(lookup, record.parent) ?? MAIN_LAYERS
  let n = 0
  for (const aggregateId of eventWrites(dbs, id)) {
    const versions = versionsOf(dbs, aggregateId, id)
    if (versions.length === 0) continue
    const lo = versions[0]!
    const hi = versions[versions.length - 1]!
    for (const layer of destination) n += countIn(dbs, aggregateId, layer, lo, hi)
    // every layer that wrote this stream: the main store and the open transactions
    for (const [, layer] of dbs.streams.getKeys({ start: [aggregateId], end: [aggregateId, HIGH] })) {
      if (layer === MAIN || layer === id || destination.includes(layer)) continue
      const sibling = lookup(layer)
      if (sibling === undefined || sibling.parent !== record.parent || !claiming.has(sibling.status)) continue
      n += countIn(dbs, aggregateId, layer, lo, hi)
    }
  }
  return n
}

const discard = (dbs: Dbs, id: string): void => {
  for (const aggregateId of eventWrites(dbs, id)) {
    for (const version of versionsOf(dbs, aggregateId, id)) dbs.events.removeSync([aggregateId, id, version])
    dbs.streams.removeSync([aggregateId, id])
    dbs.txwrites.removeSync([id, "e", aggregateId])
  }
  for (const [aggregate, aggregateId] of snapshotWrites(dbs, id)) {
    dbs.snapshots.removeSync([aggregate, id, aggregateId])
    dbs.txwrites.removeSync([id, "s", aggregate, aggregateId])
  }
  for (const key of Array.from(dbs.txoutbox.getKeys({ start: [id, 0], end: [id, MAX_VERSION], inclusiveEnd: true }))) dbs.txoutbox.removeSync(key)
}

const rejectWith = (w: WriteCtx, id: string, current: TxValue, now: number, n: number, when: string): Outcome => {
  setStatus(w, id, current, "rejected", now)
  discard(w.dbs, id)
  return { ok: false, error: error(id, "Conflict", `Transaction ${id} collides with ${n} write(s) ${when}; it was rejected`) }
}

/** A transaction inside a parent that no longer takes writes cannot reserve or commit: its writes would be lost. */
const checkParent = (w: WriteCtx, id: string, current: TxValue): void => {
  if (current.parent === null) return
  const parent = dbLookup(w.dbs)(current.parent)
  if (parent?.status !== "pending") {
    throw new Abort(error(id, "IllegalTransition", `Transaction ${id} cannot go on inside ${current.parent}, which is ${parent?.status ?? "unknown"}`))
  }
}

const reserveIn = (w: WriteCtx, id: string, current: TxValue, now: number): Outcome => {
  checkParent(w, id, current)
  const reserving = setStatus(w, id, current, "reserving", now)
  const n = collisions(w.dbs, id, reserving)
  if (n > 0) return rejectWith(w, id, reserving, now, n, "already in its destination or a reserved sibling")
  return { ok: true, record: setStatus(w, id, reserving, "reserved", now) }
}

const moveEvents = (w: WriteCtx, id: string, destination: string): void => {
  const { events, positions, streams, txwrites } = w.dbs
  for (const aggregateId of eventWrites(w.dbs, id)) {
    const entries = Array.from(events.getRange({ start: [aggregateId, id, 0], end: [aggregateId, id, MAX_VERSION], inclusiveEnd: true }))
    if (entries.length > 0) {
      // new positions: a global reader sees the events after everything it already read
      const first = destination === MAIN ? w.positions(entries.length) : 0
      for (const [i, { key, value }] of entries.entries()) {
        const version = key[2]
        if (destination === MAIN) {
          events.putSync([aggregateId, MAIN, version], { ...value, p: first + i })
          positions.putSync(first + i, [aggregateId, version])
        } else {
          events.putSync([aggregateId, destination, version], value)
        }
        events.removeSync(key)
      }
      const last = entries[entries.length - 1]!.key[2]
      if (last > (streams.get([aggregateId, destination]) ?? 0)) streams.putSync([aggregateId, destination], last)
    }
    streams.removeSync([aggregateId, id])
    if (destination !== MAIN) txwrites.putSync([destination, "e", aggregateId], true)
    txwrites.removeSync([id, "e", aggregateId])
  }
}

const moveSnapshots = (w: WriteCtx, id: string, destination: string): void => {
  const { snapshots, txwrites } = w.dbs
  for (const [aggregate, aggregateId] of snapshotWrites(w.dbs, id)) {
    const mine = snapshots.get([aggregate, id, aggregateId])
    if (mine !== undefined) {
      const theirs = snapshots.get([aggregate, destination, aggregateId])
      if (theirs === undefined || theirs.v < mine.v) {
        snapshots.putSync([aggregate, destination, aggregateId], mine)
        if (destination !== MAIN) txwrites.putSync([destination, "s", aggregate, aggregateId], true)
      }
      snapshots.removeSync([aggregate, id, aggregateId])
    }
    txwrites.removeSync([id, "s", aggregate, aggregateId])
  }
}

const moveOutbox = (w: WriteCtx, id: string, destination: string): void => {
  const { outbox, txoutbox } = w.dbs
  const rows = Array.from(txoutbox.getRange({ start: [id, 0], end: [id, MAX_VERSION], inclusiveEnd: true }))
  if (rows.length === 0) return
  if (destination === MAIN) {
    const first = w.outboxSeq(rows.length)
    for (const [i, { value }] of rows.entries()) outbox.putSync(first + i, value)
    w.outboxReady = true
  } else {
    for (const { key, value } of rows) txoutbox.putSync([destination, key[1]], value)
  }
  for (const { key } of rows) txoutbox.removeSync(key)
}

const commitIn = (w: WriteCtx, id: string, current: TxValue, now: number): Outcome => {
  const destination = current.parent ?? MAIN
  checkParent(w, id, current)
  let record = current
  if (record.status === "pending") {
    const reserved = reserveIn(w, id, record, now)
    if (!reserved.ok) return reserved
    record = reserved.record
  } else if (record.status === "reserved") {
    // appends refuse a reserved transaction's versions, so a collision here breaks an invariant: the
    // transaction stays reserved (for an operator) instead of losing its writes
    let n = 0
    for (const aggregateId of eventWrites(w.dbs, id)) {
      const versions = versionsOf(w.dbs, aggregateId, id)
      if (versions.length > 0) n += countIn(w.dbs, aggregateId, destination, versions[0]!, versions[versions.length - 1]!)
    }
    if (n > 0) throw new Abort(error(id, "Unknown", `Transaction ${id} collided while committing although it was reserved; it stays reserved`))
  }
  record = setStatus(w, id, record, "committing", now)
  moveEvents(w, id, destination)
  moveSnapshots(w, id, destination)
  moveOutbox(w, id, destination)
  return { ok: true, record: setStatus(w, id, record, "committed", now) }
}

const rejectIn = (w: WriteCtx, id: string, current: TxValue, now: number): Outcome => {
  const record = setStatus(w, id, current, "rejected", now)
  discard(w.dbs, id)
  return { ok: true, record }
}

/** Whether the first move of an operation ending in `final` is legal from `status` (for staging). */
const canStart = (status: TransactionStatus, final: TransactionStatus): boolean =>
  final === "rejected" ? transitions[status].includes("rejected") : final === "reserved" ? status === "pending" : status === "pending" || status === "reserved"

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const env = yield* LmdbEnv
  const { dbs } = env

  const checkId = (raw: string, role = "Transaction") =>
    typeof raw === "string" && isUuid(raw) ? Effect.succeed(raw.toLowerCase()) : Effect.fail(error(String(raw), "InvalidInput", `${role} id ${JSON.stringify(raw)} is not a UUID`))

  /** Runs a status operation now, or stages it in the open unit of work. */
  const apply = (id: string, what: string, final: TransactionStatus, core: (w: WriteCtx, id: string, current: TxValue, now: number) => Outcome) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const onError = mapError(id, what)
      const op = (w: WriteCtx): Outcome => {
        const current = dbLookup(w.dbs)(id)
        if (current === undefined) throw new Abort(notFound(id))
        return core(w, id, current, now)
      }
      const unit = yield* env.unit
      if (unit === undefined) {
        const outcome = yield* env.write(op, onError)
        if (!outcome.ok) return yield* Effect.fail(outcome.error)
        return toRecord(id, outcome.record)
      }
      const current = yield* env.read(() => unitLookup(dbs, unit)(id), onError)
      if (current === undefined) return yield* Effect.fail(notFound(id))
      if (!canStart(current.status, final)) return yield* Effect.fail(error(id, "IllegalTransition", `Transaction ${id} cannot move from ${current.status} to ${final}`))
      // refusals known now fail the call itself (an answer the caller can handle), not the whole unit
      // at its commit; the unit's own commit checks again
      if (final !== "rejected") {
        const refusal = yield* env.read(() => {
          const lookup = dbLookup(dbs)
          if (current.parent !== null && lookup(current.parent)?.status !== "pending") {
            return error(id, "IllegalTransition", `Transaction ${id} cannot go on inside ${current.parent}, which is ${lookup(current.parent)?.status ?? "unknown"}`)
          }
          const n = current.status === "pending" ? collisions(dbs, id, current) : 0
          return n > 0 ? error(id, "Conflict", `Transaction ${id} collides with ${n} write(s) already in its destination or a reserved sibling`) : undefined
        }, onError)
        if (refusal !== undefined) return yield* Effect.fail(refusal)
      }
      const predicted: TxValue = { ...current, status: final, updatedAt: now }
      unit.ops.push((w) => {
        const outcome = op(w)
        if (!outcome.ok) throw new Abort(outcome.error)
      })
      unit.transactions.set(id, predicted)
      return toRecord(id, predicted)
    })

  const begin = Effect.fn("LmdbTransactions.begin")(function*(options?: { readonly id?: string | undefined; readonly parent?: string | null | undefined }) {
    const id = yield* checkId(options?.id ?? crypto.randomUUID())
    const rawParent = options?.parent ?? null
    const parent = rawParent === null ? null : yield* Effect.mapError(checkId(rawParent, "Parent transaction"), (e) => error(id, "InvalidInput", e.message))
    const now = yield* Clock.currentTimeMillis
    const record: TxValue = { parent, status: "pending", createdAt: now, updatedAt: now }
    const check = (lookup: TxLookup) => {
      if (lookup(id) !== undefined) throw new Abort(error(id, "AlreadyExists", `Transaction ${id} already exists`))
      if (parent !== null) {
        const p = lookup(parent)
        if (p === undefined) throw new Abort(error(id, "NotFound", `Parent transaction ${parent} does not exist`))
        if (p.status !== "pending") throw new Abort(error(id, "IllegalTransition", `Parent transaction ${parent} is ${p.status}, not pending`))
      }
    }
    const op = (w: WriteCtx) => {
      check(dbLookup(w.dbs))
      w.dbs.transactions.putSync(id, record)
      w.dbs.txstatus.putSync(["pending", now, id], true)
    }
    const onError = mapError(id, "begin")
    const unit = yield* env.unit
    if (unit === undefined) {
      yield* env.write(op, onError)
    } else {
      yield* env.read(() => check(unitLookup(dbs, unit)), onError)
      unit.ops.push(op)
      unit.transactions.set(id, record)
    }
    return toRecord(id, record)
  })

  const get = Effect.fn("LmdbTransactions.get")(function*(raw: string) {
    const id = yield* checkId(raw)
    const unit = yield* env.unit
    const record = yield* env.read(() => unitLookup(dbs, unit)(id), mapError(id, "get"))
    if (record === undefined) return yield* Effect.fail(notFound(id))
    return toRecord(id, record)
  })

  const chain = Effect.fn("LmdbTransactions.chain")(function*(raw: string) {
    const id = yield* checkId(raw)
    const unit = yield* env.unit
    const found = yield* env.read(() => chainOf(unitLookup(dbs, unit), id), mapError(id, "chain"))
    if (found === undefined) return yield* Effect.fail(notFound(id))
    return found.map(([t]) => t)
  })

  const reserve = Effect.fn("LmdbTransactions.reserve")(function*(raw: string) {
    const id = yield* checkId(raw)
    return yield* apply(id, "reserve", "reserved", reserveIn)
  })

  const commit = Effect.fn("LmdbTransactions.commit")(function*(raw: string) {
    const id = yield* checkId(raw)
    return yield* apply(id, "commit", "committed", commitIn)
  })

  const reject = Effect.fn("LmdbTransactions.reject")(function*(raw: string) {
    const id = yield* checkId(raw)
    return yield* apply(id, "reject", "rejected", rejectIn)
  })

  const list = Effect.fn("LmdbTransactions.list")(function*(options: { readonly status?: TransactionStatus | undefined; readonly olderThan?: number | undefined }) {
    const { olderThan, status } = options
    if (status !== undefined && !statuses.includes(status)) return yield* Effect.fail(error(NIL, "InvalidInput", `Unknown status ${JSON.stringify(status)}`))
    if (olderThan !== undefined && !Number.isFinite(olderThan)) return yield* Effect.fail(error(NIL, "InvalidInput", `olderThan must be a number, got ${olderThan}`))
    return yield* env.read(() => {
      const lookup = dbLookup(dbs)
      const out: Array<TransactionRecord> = []
      for (const s of status === undefined ? statuses : [status]) {
        // the index is ordered by last change, so "older than" is a range end
        for (const [, , id] of dbs.txstatus.getKeys({ start: [s], end: [s, olderThan ?? MAX_VERSION] })) {
          const record = lookup(id)
          if (record !== undefined && record.status === s) out.push(toRecord(id, record))
        }
      }
      return status === undefined ? out.sort((a, b) => a.updatedAt - b.updatedAt) : out
    }, mapError(NIL, "list"))
  })

  return Transactions.of({ begin, get, chain, reserve, commit, reject, list } satisfies TransactionsShape)
})

/**
 * Needs the shared environment (see `Lmdb.layer`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<Transactions, never, LmdbEnv> = Layer.effect(Transactions, make)
