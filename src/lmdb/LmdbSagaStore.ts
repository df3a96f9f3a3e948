/**
 * The `SagaStore` port on LMDB: its own environment at `saga.storage.path` (minos's `./exam.lmdb`),
 * apart from the storage environment, opened with the layer and closed when it is released. Each
 * change is one synchronous write transaction that checks the revision inside it and updates the
 * record and its index entries together, so listing by status and finding due pauses are range scans.
 *
 * | db | key | value |
 * | --- | --- | --- |
 * | `executions` | id | {@link ExecutionRecord} |
 * | `bystatus` | `[status, createdAt, id]` | true |
 * | `bydeadline` | `[deadline, id]` (paused executions with a deadline only) | true |
 *
 * **Details**
 *
 * - The path may name a file or a folder. An existing folder is opened as an environment folder
 *   (`data.mdb` inside, as minos's Python `lmdb` left it) and an existing file as the database file.
 *   A new path with an extension (`./exam.lmdb`) becomes a file and one without becomes a folder;
 *   missing parent folders are created.
 * - `put` replaces everything but `createdAt`, which stays as created (it orders `list`).
 * - Ids are stored in lower case, as PostgreSQL's `uuid` returns them.
 *
 * **Gotchas**
 *
 * - One process per path: LMDB serialises writers across processes, but the saga manager's timers
 *   assume they own the executions they keep. Several instances need the PostgreSQL store.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import { Effect, Layer, Option } from "effect"
import { type Database, open, type RootDatabase } from "lmdb"
import { isUuid } from "../internal/Ids.ts"
import { Abort, asRecord, CorruptData, failureOf } from "./internal/Env.ts"
import { type ExecutionRecord, ExecutionStatus, SagaStore, SagaStoreError, type SagaStoreShape, checkLimit, checkRecord, error, isStatus, STATUSES } from "../saga/SagaStore.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** The database file or folder (`saga.storage.path`). */
  readonly path: string
  /** Skips the fsync at commit (tests, benchmarks): a crash may lose the last writes. */
  readonly noSync?: boolean | undefined
}

type StatusKey = [string, number, string]
type DeadlineKey = [number, string]

/** Sorts after every UUID in a key position. */
const HIGH = "\uffff"




/** A stored value back to a record, checking it has the shape this module wrote. */
const decode = (value: unknown, id: string): ExecutionRecord => {
  const r = asRecord(value, `execution ${id}`)
  if (
    typeof r["saga"] !== "string" || typeof r["version"] !== "number" || !isStatus(r["status"]) ||
    (r["deadline"] !== null && typeof r["deadline"] !== "number") || typeof r["createdAt"] !== "number" ||
    typeof r["updatedAt"] !== "number" || typeof r["revision"] !== "number"
  ) throw new CorruptData(`execution ${id} does not have the shape of an execution record`)
  return {
    id,
    saga: r["saga"],
    version: r["version"],
    status: r["status"],
    deadline: r["deadline"] as number | null,
    data: r["data"],
    createdAt: r["createdAt"],
    updatedAt: r["updatedAt"],
    revision: r["revision"]
  }
}

interface Env {
  readonly root: RootDatabase
  readonly executions: Database<unknown, string>
  readonly byStatus: Database<true, StatusKey>
  readonly byDeadline: Database<true, DeadlineKey>
}

const openEnv = (options: Options): Env => {
  // an existing path decides file or folder; a new one is a file when it has an extension (lmdb's rule)
  const stat = fs.statSync(options.path, { throwIfNoEntry: false })
  const root = open({
    path: options.path,
    maxDbs: 8,
    ...(stat === undefined ? {} : { noSubdir: !stat.isDirectory() }),
    ...(options.noSync === true ? { noSync: true } : {})
  })
  try {
    return {
      root,
      executions: root.openDB<unknown, string>({ name: "executions" }),
      byStatus: root.openDB<true, StatusKey>({ name: "bystatus" }),
      byDeadline: root.openDB<true, DeadlineKey>({ name: "bydeadline" })
    }
  } catch (e) {
    void root.close().catch(() => undefined)
    throw e
  }
}

/**
 * Opens (creating when missing) the environment at `options.path`; it is closed when the scope is.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("LmdbSagaStore.make")(function*(options: Options) {
  const { byDeadline, byStatus, executions, root } = yield* Effect.acquireRelease(
    Effect.try({
      try: () => openEnv(options),
      catch: (cause) => error("Unavailable", failureOf(`Cannot open the saga store at ${options.path}`, cause).message, cause)
    }),
    (env) => Effect.ignore(Effect.tryPromise(() => env.root.close()))
  )

  const statusKey = (r: ExecutionRecord): StatusKey => [r.status, r.createdAt, r.id]
  const deadlineKey = (r: ExecutionRecord): DeadlineKey | undefined => (r.status === "paused" && r.deadline !== null ? [r.deadline, r.id] : undefined)
  const index = (r: ExecutionRecord) => {
    byStatus.putSync(statusKey(r), true)
    const d = deadlineKey(r)
    if (d !== undefined) byDeadline.putSync(d, true)
  }
  const unindex = (r: ExecutionRecord) => {
    byStatus.removeSync(statusKey(r))
    const d = deadlineKey(r)
    if (d !== undefined) byDeadline.removeSync(d)
  }
  const load = (id: string): ExecutionRecord | undefined => {
    const value = executions.get(id)
    return value === undefined ? undefined : decode(value, id)
  }

  const toError = (what: string) => (cause: unknown): SagaStoreError => {
    if (cause instanceof Abort) return cause.error as SagaStoreError
    const failure = failureOf(what, cause)
    return error(failure.kind === "Unavailable" ? "Unavailable" : "Unknown", failure.message, cause)
  }
  /** One write transaction; throw {@link Abort} inside `f` to fail with its error and write nothing. */
  const write = <A>(what: string, f: () => A): Effect.Effect<A, SagaStoreError> =>
    Effect.try({ try: () => root.transactionSync(f), catch: toError(what) })
  const read = <A>(what: string, f: () => A): Effect.Effect<A, SagaStoreError> => Effect.try({ try: f, catch: toError(what) })
  const invalid = (message: string) => Effect.fail(error("InvalidInput", message))

  /** The record to store: a detached JSON copy of the data, the id in lower case. */
  const stored = (r: Omit<ExecutionRecord, "revision">, createdAt: number, revision: number): ExecutionRecord => ({
    id: r.id.toLowerCase(),
    saga: r.saga,
    version: r.version,
    status: r.status,
    deadline: r.deadline,
    data: JSON.parse(JSON.stringify(r.data)) as unknown,
    createdAt,
    updatedAt: r.updatedAt,
    revision
  })

  const create = Effect.fn("LmdbSagaStore.create")(function*(record: Omit<ExecutionRecord, "revision">) {
    const problem = checkRecord(record)
    if (problem !== undefined) return yield* invalid(problem)
    const next = stored(record, record.createdAt, 1)
    return yield* write("create", () => {
      if (executions.get(next.id) !== undefined) throw new Abort(error("Conflict", `Execution ${next.id} exists`))
      executions.putSync(next.id, next)
      index(next)
      return next
    })
  })

  const put = Effect.fn("LmdbSagaStore.put")(function*(record: Omit<ExecutionRecord, "revision">, expectedRevision: number) {
    const problem = checkRecord(record) ??
      (Number.isInteger(expectedRevision) && expectedRevision >= 1 ? undefined : `The expected revision must be a positive integer, got ${expectedRevision}`)
    if (problem !== undefined) return yield* invalid(problem)
    const id = record.id.toLowerCase()
    return yield* write("put", () => {
      const current = load(id)
      if (current === undefined) throw new Abort(error("NotFound", `No execution ${id}`))
      if (current.revision !== expectedRevision) {
        throw new Abort(error("Conflict", `Execution ${id} is at revision ${current.revision}, not ${expectedRevision}`))
      }
      const next = stored(record, current.createdAt, current.revision + 1)
      unindex(current)
      executions.putSync(id, next)
      index(next)
      return next
    })
  })

  const get = Effect.fn("LmdbSagaStore.get")(function*(id: string) {
    if (typeof id !== "string" || !isUuid(id)) return Option.none()
    return Option.fromUndefinedOr(yield* read("get", () => load(id.toLowerCase())))
  })

  const list = Effect.fn("LmdbSagaStore.list")(function*(
    options?: { readonly status?: ExecutionStatus | undefined; readonly saga?: string | undefined; readonly limit?: number | undefined }
  ) {
    const limit = options?.limit ?? 1000
    const problem = checkLimit(limit) ?? (options?.status === undefined || isStatus(options.status) ? undefined : `Unknown execution status ${JSON.stringify(options.status)}`)
    if (problem !== undefined) return yield* invalid(problem)
    const saga = options?.saga
    return yield* read("list", () => {
      // each status range is already oldest first: take up to `limit` from each, then merge
      const found: Array<ExecutionRecord> = []
      if (limit === 0) return found
      for (const status of options?.status === undefined ? STATUSES : [options.status]) {
        let taken = 0
        for (const [, createdAt, id] of byStatus.getKeys({ start: [status], end: [status, HIGH] })) {
          const r = load(id)
          // an entry that does not match its record is stale (not written by this code): skipped
          if (r === undefined || r.status !== status || r.createdAt !== createdAt) continue
          if (saga !== undefined && r.saga !== saga) continue
          found.push(r)
          if (++taken >= limit) break
        }
      }
      if (options?.status === undefined) found.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      return found.slice(0, limit)
    })
  })

  const due = Effect.fn("LmdbSagaStore.due")(function*(at: number, limit = 1000) {
    const problem = checkLimit(limit) ?? (typeof at === "number" && !Number.isNaN(at) ? undefined : `The time must be a number, got ${at}`)
    if (problem !== undefined) return yield* invalid(problem)
    return yield* read("due", () => {
      const out: Array<ExecutionRecord> = []
      if (limit === 0) return out
      for (const [deadline, id] of byDeadline.getKeys({ end: [at, HIGH] })) {
        const r = load(id)
        // an entry that does not match its record is stale (not written by this code): skipped
        if (r === undefined || r.status !== "paused" || r.deadline !== deadline) continue
        out.push(r)
        if (out.length >= limit) break
      }
      return out
    })
  })

  const prune = Effect.fn("LmdbSagaStore.prune")(function*(olderThan: number) {
    if (typeof olderThan !== "number" || Number.isNaN(olderThan)) return yield* invalid(`The cutoff must be a number, got ${olderThan}`)
    return yield* write("prune", () => {
      let n = 0
      for (const status of ["finished", "errored"] as const) {
        // collected first: the range is not walked while it is being deleted from
        const keys = Array.from(byStatus.getKeys({ start: [status], end: [status, HIGH] }))
        for (const [, , id] of keys) {
          const r = load(id)
          if (r === undefined || r.status !== status || r.updatedAt >= olderThan) continue
          unindex(r)
          executions.removeSync(id)
          n++
        }
      }
      return n
    })
  })

  return SagaStore.of({ create, put, get, list, due, prune } satisfies SagaStoreShape)
})

/**
 * The store on its own LMDB environment, open while the layer is.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<SagaStore, SagaStoreError> => Layer.effect(SagaStore, make(options))
