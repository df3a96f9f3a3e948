/**
 * The LMDB environment every LMDB port shares (one folder, named databases) and the unit of work over
 * it. Writes are staged while the caller's Effect runs and applied at the end in ONE synchronous LMDB
 * write transaction: an Effect (user code, async IO) must never hold LMDB's single write lock. Each
 * staged op checks its condition again inside the write transaction and throws {@link Abort} with the
 * port's typed error to abort the whole transaction.
 *
 * Layout (keys are lmdb ordered-binary arrays; `txKey` is `""` for the main store, else the
 * transaction id):
 *
 * | db | key | value |
 * | --- | --- | --- |
 * | `events` | `[aggregateId, txKey, version]` | {@link EventValue} |
 * | `streams` | `[aggregateId, txKey]` | last version of the stream in that layer |
 * | `positions` | global position | `[aggregateId, version]` of a main-store event |
 * | `txwrites` | `[txId, "e", aggregateId]` / `[txId, "s", aggregate, aggregateId]` | index of a transaction's writes |
 * | `snapshots` | `[aggregate, txKey, aggregateId]` | {@link SnapshotValue} |
 * | `transactions` | id | {@link TxValue} |
 * | `txstatus` | `[status, updatedAt, id]` | index for `Transactions.list` |
 * | `outbox` | sequence | publishable {@link OutboxValue} |
 * | `txoutbox` | `[txId, sequence]` | outbox rows held by an open transaction |
 * | `inbox` | `[group, topic, identifier]` | when the message was handled |
 * | `inboxage` | `[handledAt, group, topic, identifier]` | index for `Inbox.prune` |
 * | `deadletters` | id | {@link DeadLetterValue} |
 * | `meta` | `"position"` / `"outbox"` / `"deadletter"` | counters |
 * | `documents` | `[collection, id]` | {@link DocumentValue} (read models) |
 * | `pmarks` | `[projection, aggregateId]` | {@link MarkValue} |
 * | `pparked` | `[projection, aggregateId, version]` | {@link ParkedValue} |
 * | `pstate` | key | {@link StateValue} |
 */
import * as fs from "node:fs"
import { Context, Effect, type Scope } from "effect"
import { type Database, open, type RootDatabase } from "lmdb"
import type { StoredEvent } from "../../eventstore/EventStore.ts"
import type { TransactionStatus } from "../../transaction/Transactions.ts"
import type { DeadLetter } from "../../queue/Inbox.ts"
import type { SnapshotRecord } from "../../snapshot/SnapshotStore.ts"
import { StorageError, type UnitOfWorkShape } from "../../storage/UnitOfWork.ts"

// ---------------------------------------------------------------------------------------------
// layout

/** Sorts after every version number. */
export const MAX_VERSION = Number.MAX_SAFE_INTEGER
/** Sorts after every UUID and name in a key position. */
export const HIGH = "\uffff"
/** The layer key of the committed main store. */
export const MAIN = ""
export const MAIN_LAYERS: ReadonlyArray<string> = [MAIN]

export interface EventValue {
  /** Global position; 0 while the event belongs to an open transaction. */
  readonly p: number
  readonly a: string
  readonly t: string
  readonly d: unknown
  readonly m: Readonly<Record<string, unknown>>
  readonly c: number
}

export interface SnapshotValue {
  readonly v: number
  readonly d: unknown
  readonly x: boolean
  readonly c: number
  readonly u: number
}

export interface DocumentValue {
  readonly d: unknown
  readonly u: number
}

/** A projection's mark: the version and a revision bumped by every write to the row. */
export interface MarkValue {
  readonly v: number
  readonly r: number
}

export interface ParkedValue {
  readonly e: unknown
  readonly t: number
}

export interface StateValue {
  readonly v: unknown
  readonly r: number
}

export interface TxValue {
  readonly parent: string | null
  readonly status: TransactionStatus
  readonly createdAt: number
  readonly updatedAt: number
}

export interface OutboxValue {
  readonly topic: string
  readonly key: string | null
  readonly value: string
  readonly headers: Readonly<Record<string, string>>
  readonly createdAt: number
}

/** A stored dead letter: the port's record without its id (the key). */
export type DeadLetterValue = Omit<DeadLetter, "id">

export type EventKey = [string, string, number]
export type StreamKey = [string, string]
export type SnapshotKey = [string, string, string]

export interface Dbs {
  readonly events: Database<EventValue, EventKey>
  readonly streams: Database<number, StreamKey>
  readonly positions: Database<[string, number], number>
  readonly txwrites: Database<true, Array<string>>
  readonly snapshots: Database<SnapshotValue, SnapshotKey>
  readonly transactions: Database<TxValue, string>
  readonly txstatus: Database<true, [string, number, string]>
  readonly outbox: Database<OutboxValue, number>
  readonly txoutbox: Database<OutboxValue, [string, number]>
  readonly inbox: Database<number, [string, string, string]>
  readonly inboxage: Database<true, [number, string, string, string]>
  readonly deadletters: Database<DeadLetterValue, number>
  readonly meta: Database<number, string>
  readonly documents: Database<DocumentValue, [string, string]>
  readonly pmarks: Database<MarkValue, [string, string]>
  readonly pparked: Database<ParkedValue, [string, string, number]>
  readonly pstate: Database<StateValue, string>
}

export type Counter = "position" | "outbox" | "deadletter"

// ---------------------------------------------------------------------------------------------
// failures

/** Thrown inside a write (or read) to fail with `error`, a port's typed error; aborts the write transaction. */
export class Abort {
  readonly error: unknown
  constructor(error: unknown) {
    this.error = error
  }
}

/** Thrown when a stored value does not have the shape this code wrote. */
export class CorruptData extends Error {}

export interface Failure {
  readonly kind: "Corrupt" | "Unavailable" | "Unknown"
  readonly message: string
  readonly cause: unknown
}

/** msgpackr's decoding errors: the stored bytes are not what this code wrote. */
const undecodable = /MessagePack|Unknown extension|end of buffer|Invalid key/i
const transient = /MDB_MAP_FULL|MDB_READERS_FULL|MDB_TXN_FULL|MDB_MAP_RESIZED|ENOSPC|EIO|EAGAIN|EBUSY|ENOMEM|EMFILE|closed/i

const describeCause = (cause: unknown): string => cause instanceof Error ? `${cause.message}${(cause as { code?: unknown }).code ? ` (${String((cause as { code?: unknown }).code)})` : ""}` : String(cause)

/** Sorts a failure that is not a typed {@link Abort}: corrupt data, a resource problem worth retrying, or anything else. */
export const failureOf = (what: string, cause: unknown): Failure => {
  if (cause instanceof CorruptData) return { kind: "Corrupt", message: `${what}: ${cause.message}`, cause }
  const message = `${what}: ${describeCause(cause)}`
  if (undecodable.test(message)) return { kind: "Corrupt", message, cause }
  return { kind: transient.test(message) ? "Unavailable" : "Unknown", message, cause }
}

/** `onError` for {@link LmdbEnvShape.read} / `write`: an {@link Abort} yields its typed error, anything else goes through `make`. */
export const errorMapper = <E>(what: string, make: (failure: Failure) => E) => (cause: unknown): E => cause instanceof Abort ? cause.error as E : make(failureOf(what, cause))

export const asRecord = (value: unknown, what: string): Record<string, unknown> => {
  if (typeof value !== "object" || value === null) throw new CorruptData(`${what} is not a record`)
  return value as Record<string, unknown>
}

// ---------------------------------------------------------------------------------------------
// unit of work

/** One write transaction's helpers: counters live in `meta`, so positions are gap-free in commit order. */
export class WriteCtx {
  /** Set when rows became publishable, to wake `awaitWork` after the commit. */
  outboxReady = false
  readonly dbs: Dbs
  constructor(dbs: Dbs) {
    this.dbs = dbs
  }

  /** Reserves `n` numbers of `counter`; returns the first. */
  next(counter: Counter, n: number): number {
    const last = this.dbs.meta.get(counter) ?? 0
    this.dbs.meta.putSync(counter, last + n)
    return last + 1
  }

  /** Reserves `n` global positions; returns the first. */
  positions(n: number): number {
    return this.next("position", n)
  }

  /** Reserves `n` outbox sequence numbers; returns the first. */
  outboxSeq(n: number): number {
    return this.next("outbox", n)
  }
}

/** A staged write, applied inside the unit's write transaction; throws {@link Abort} to fail the unit. */
export type Op = (w: WriteCtx) => void

/**
 * An open unit of work: the staged ops plus what reads inside the unit must see of them
 * (read-your-writes overlays, keyed with {@link layerKey} / {@link snapshotKey}).
 */
export interface Unit {
  open: boolean
  readonly ops: Array<Op>
  readonly after: Array<Effect.Effect<void>>
  readonly streams: Map<string, number>
  readonly events: Map<string, Array<StoredEvent>>
  readonly snapshots: Map<string, SnapshotRecord>
  readonly transactions: Map<string, TxValue>
  /** Inbox claims staged by the unit (`group\0topic\0identifier`). */
  readonly claims: Set<string>
  /** Dead letters the unit removes. */
  readonly removedDeadLetters: Set<number>
  /** Read-model documents the unit writes (`collection\0id`; null: removed). */
  readonly documents: Map<string, DocumentValue | null>
  /** Projection marks the unit writes or locked (`projection\0aggregateId`). */
  readonly marks: Map<string, MarkValue>
  /** Marks the unit locked: checked again at commit. */
  readonly locked: Set<string>
  /** Parked events the unit writes (`projection\0aggregateId\0version`; null: removed). */
  readonly parked: Map<string, ParkedValue | null>
  /** Projection states the unit writes. */
  readonly states: Map<string, StateValue>
}

export const layerKey = (aggregateId: string, txKey: string): string => `${aggregateId}\u0000${txKey}`
export const snapshotKey = (aggregate: string, txKey: string, aggregateId: string): string => `${aggregate}\u0000${txKey}\u0000${aggregateId}`

const newUnit = (): Unit => ({
  open: true,
  ops: [],
  after: [],
  streams: new Map(),
  events: new Map(),
  snapshots: new Map(),
  transactions: new Map(),
  claims: new Set(),
  removedDeadLetters: new Set(),
  documents: new Map(),
  marks: new Map(),
  locked: new Set(),
  parked: new Map(),
  states: new Map()
})

// ---------------------------------------------------------------------------------------------
// transaction records and chains

export type TxLookup = (id: string) => TxValue | undefined

const decodeTx = (value: unknown): TxValue | undefined => {
  if (value === undefined) return undefined
  const r = asRecord(value, "transaction record")
  if (typeof r["status"] !== "string" || typeof r["updatedAt"] !== "number") throw new CorruptData("transaction record has no status")
  return r as unknown as TxValue
}

/** Transaction records as committed (inside a write transaction: as written so far). */
export const dbLookup = (dbs: Dbs): TxLookup => (id) => decodeTx(dbs.transactions.get(id))

/** Transaction records as a read inside `unit` sees them: staged ones first. */
export const unitLookup = (dbs: Dbs, unit: Unit | undefined): TxLookup =>
  unit === undefined || unit.transactions.size === 0 ? dbLookup(dbs) : (id) => unit.transactions.get(id) ?? decodeTx(dbs.transactions.get(id))

/** `[outermost, …, id]` with their records, or `undefined` when `id` is unknown. */
export const chainOf = (lookup: TxLookup, id: string): Array<readonly [string, TxValue]> | undefined => {
  const out: Array<readonly [string, TxValue]> = []
  let current: string | null = id
  while (current !== null) {
    const record = lookup(current)
    if (record === undefined) {
      if (current === id) return undefined
      throw new CorruptData(`transaction ${current}, an ancestor of ${id}, is missing`)
    }
    out.push([current, record])
    if (out.length > 64) throw new CorruptData(`the parents of transaction ${id} form a cycle`)
    current = record.parent
  }
  return out.reverse()
}

/** The layers a read inside `id` sees: `["", outermost, …, id]`, or `undefined` when `id` is unknown. */
export const layersOf = (lookup: TxLookup, id: string): ReadonlyArray<string> | undefined => {
  const chain = chainOf(lookup, id)
  return chain === undefined ? undefined : [MAIN, ...chain.map(([t]) => t)]
}

// ---------------------------------------------------------------------------------------------
// the service

/**
 * @category models
 * @since 0.1.0
 */
export interface LmdbOptions {
  /** The environment's folder; created when missing. */
  readonly path: string
  /** Initial map size in bytes (lmdb grows it when full). */
  readonly mapSize?: number | undefined
  /**
   * Skip the fsync at each commit: much faster, but a crash of the machine (not of the process) can
   * lose the last commits or corrupt the environment. For tests and throwaway data.
   */
  readonly noSync?: boolean | undefined
}

/**
 * @category services
 * @since 0.1.0
 */
export interface LmdbEnvShape {
  readonly path: string
  readonly root: RootDatabase
  readonly dbs: Dbs
  /** The open unit of work of this environment the caller runs in, if any. */
  readonly unit: Effect.Effect<Unit | undefined>
  /** Runs `op` now in its own write transaction; a throw aborts it and goes through `onError`. */
  readonly write: <A, E>(op: (w: WriteCtx) => A, onError: (cause: unknown) => E) => Effect.Effect<A, E>
  /** Runs a synchronous read; a throw goes through `onError`. */
  readonly read: <A, E>(f: () => A, onError: (cause: unknown) => E) => Effect.Effect<A, E>
  readonly transaction: UnitOfWorkShape["transaction"]
  readonly afterCommit: UnitOfWorkShape["afterCommit"]
  /** Resolves when a commit of this process made outbox rows publishable, or after `maxWaitMs`. */
  readonly awaitOutbox: (maxWaitMs: number) => Effect.Effect<void>
}

/**
 * The opened environment and its named databases, shared by the LMDB ports of one layer.
 *
 * @category services
 * @since 0.1.0
 */
export class LmdbEnv extends Context.Service<LmdbEnv, LmdbEnvShape>()("effect-minos/storage/LmdbEnv") {}

let environments = 0

const storageError = (what: string, cause: unknown): StorageError => {
  const f = failureOf(what, cause)
  return new StorageError({ reason: f.kind === "Unavailable" ? "Unavailable" : "Unknown", message: f.message, cause })
}

/**
 * Opens the environment (closed when the scope closes).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: LmdbOptions): Effect.Effect<LmdbEnvShape, StorageError, Scope.Scope> =>
  Effect.gen(function*() {
    const root = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          fs.mkdirSync(options.path, { recursive: true })
          return open({
            path: options.path,
            maxDbs: 32,
            ...(options.mapSize === undefined ? {} : { mapSize: options.mapSize }),
            ...(options.noSync === true ? { noSync: true } : {})
          })
        },
        catch: (cause) => storageError(`open LMDB environment at ${options.path}`, cause)
      }),
      (root) => Effect.ignore(Effect.tryPromise(() => root.close()))
    )
    const dbs: Dbs = yield* Effect.try({
      try: () => ({
        events: root.openDB<EventValue, EventKey>({ name: "events" }),
        streams: root.openDB<number, StreamKey>({ name: "streams" }),
        positions: root.openDB<[string, number], number>({ name: "positions" }),
        txwrites: root.openDB<true, Array<string>>({ name: "txwrites" }),
        snapshots: root.openDB<SnapshotValue, SnapshotKey>({ name: "snapshots" }),
        transactions: root.openDB<TxValue, string>({ name: "transactions" }),
        txstatus: root.openDB<true, [string, number, string]>({ name: "txstatus" }),
        outbox: root.openDB<OutboxValue, number>({ name: "outbox" }),
        txoutbox: root.openDB<OutboxValue, [string, number]>({ name: "txoutbox" }),
        inbox: root.openDB<number, [string, string, string]>({ name: "inbox" }),
        inboxage: root.openDB<true, [number, string, string, string]>({ name: "inboxage" }),
        deadletters: root.openDB<DeadLetterValue, number>({ name: "deadletters" }),
        documents: root.openDB<DocumentValue, [string, string]>({ name: "documents" }),
        pmarks: root.openDB<MarkValue, [string, string]>({ name: "pmarks" }),
        pparked: root.openDB<ParkedValue, [string, string, number]>({ name: "pparked" }),
        pstate: root.openDB<StateValue, string>({ name: "pstate" }),
        meta: root.openDB<number, string>({ name: "meta" })
      }),
      catch: (cause) => storageError(`open LMDB databases at ${options.path}`, cause)
    })

    // one reference per environment, so units of two environments never see each other
    const UnitRef = Context.Reference<Unit | undefined>(`effect-minos/storage/LmdbEnv/unit/${++environments}`, { defaultValue: () => undefined })

    // awaitWork: wakers of waiting relays; a signal nobody waited for is kept, so it is not lost
    // between a relay's last `process` and its next `awaitWork`
    const waiters = new Set<() => void>()
    let missed = false
    const signalOutbox = () => {
      if (waiters.size === 0) {
        missed = true
        return
      }
      for (const wake of [...waiters]) wake()
      waiters.clear()
    }

    const commitSync = <A>(op: (w: WriteCtx) => A): A => {
      const w = new WriteCtx(dbs)
      const a = root.transactionSync(() => op(w))
      if (w.outboxReady) signalOutbox()
      return a
    }

    const write = <A, E>(op: (w: WriteCtx) => A, onError: (cause: unknown) => E): Effect.Effect<A, E> =>
      Effect.try({ try: () => commitSync(op), catch: onError })

    const read = <A, E>(f: () => A, onError: (cause: unknown) => E): Effect.Effect<A, E> => Effect.try({ try: f, catch: onError })

    const unit: Effect.Effect<Unit | undefined> = Effect.map(UnitRef, (u) => (u !== undefined && u.open ? u : undefined))

    const runAfter = (u: Unit): Effect.Effect<void> =>
      u.after.length === 0
        ? Effect.void
        : Effect.forEach(u.after, (e) => Effect.ignoreCause(e, { log: true, message: "LmdbEnv: an afterCommit callback failed" }), { discard: true })

    const commitUnit = (u: Unit): Effect.Effect<void, StorageError> =>
      u.ops.length === 0 ? Effect.void : Effect.try({
        try: () =>
          commitSync((w) => {
            for (const op of u.ops) op(w)
          }),
        // a staged op's typed error (Conflict, TransactionClosed, …) fails the unit as it is
        catch: (cause) => (cause instanceof Abort ? cause.error as StorageError : storageError("commit the unit of work", cause))
      })

    const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StorageError, R> =>
      Effect.flatMap(unit, (current) => {
        if (current !== undefined) return effect
        const u = newUnit()
        return effect.pipe(
          Effect.provideService(UnitRef, u),
          // whatever happens, later writes (a stray forked fiber) must not join a finished unit
          Effect.ensuring(Effect.sync(() => {
            u.open = false
          })),
          Effect.tap(() => commitUnit(u)),
          Effect.tap(() => runAfter(u))
        )
      })

    const afterCommit = <R>(effect: Effect.Effect<void, never, R>): Effect.Effect<void, never, R> =>
      Effect.flatMap(unit, (u) =>
        u === undefined
          ? effect
          : Effect.map(Effect.context<R>(), (context) => {
            u.after.push(Effect.provideContext(effect, context))
          }))

    const awaitOutbox = (maxWaitMs: number): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (missed) {
          missed = false
          return Effect.void
        }
        return Effect.callback<void>((resume) => {
          const wake = () => resume(Effect.void)
          waiters.add(wake)
          return Effect.sync(() => {
            waiters.delete(wake)
          })
        }).pipe(Effect.timeoutOption(Math.max(0, maxWaitMs)), Effect.asVoid)
      })

    return { path: options.path, root, dbs, unit, write, read, transaction, afterCommit, awaitOutbox } satisfies LmdbEnvShape
  })
