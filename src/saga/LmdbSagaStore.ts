/**
 * The `SagaStore` port on LMDB: its own environment at `saga.storage.path` (minos's `./exam.lmdb`),
 * one write transaction per change with the revision checked inside it, and index databases so
 * listing by status and finding due pauses are range scans.
 *
 * | db | key | value |
 * | --- | --- | --- |
 * | `executions` | id | {@link ExecutionRecord} |
 * | `bystatus` | `[status, createdAt, id]` | true |
 * | `bydeadline` | `[deadline, id]` (paused only) | true |
 *
 * One process per folder: LMDB serialises writers across processes, but the saga manager's timers
 * assume it owns the executions it keeps.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option } from "effect"
import { open, type RootDatabase } from "lmdb"
import * as fs from "node:fs"
import * as path from "node:path"
import { isUuid } from "../eventstore/EventStore.ts"
import { isJson } from "../eventstore/internal/validate.ts"
import { type ExecutionRecord, type ExecutionStatus, SagaStore, SagaStoreError, type SagaStoreShape } from "./SagaStore.ts"

class Refused {
  readonly error: SagaStoreError
  constructor(error: SagaStoreError) {
    this.error = error
  }
}

const fail = (reason: SagaStoreError["reason"], message: string, cause?: unknown) =>
  new SagaStoreError({ reason, message, ...(cause === undefined ? {} : { cause }) })

const check = (r: Omit<ExecutionRecord, "revision">): string | undefined => {
  if (!isUuid(r.id)) return `Execution id ${JSON.stringify(r.id)} is not a UUID`
  if (typeof r.saga !== "string" || r.saga.length === 0) return "The saga name is empty"
  if (!Number.isInteger(r.version) || r.version < 1) return `Invalid version ${r.version}`
  if (!["created", "running", "paused", "finished", "errored"].includes(r.status)) return `Invalid status ${r.status}`
  if (r.deadline !== null && !Number.isFinite(r.deadline)) return "Invalid deadline"
  if (!Number.isFinite(r.createdAt) || !Number.isFinite(r.updatedAt)) return "Invalid timestamps"
  if (!isJson(r.data)) return "The execution data is not JSON"
  return undefined
}

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("LmdbSagaStore.make")(function*(options: { readonly path: string; readonly noSync?: boolean }) {
  const root: RootDatabase = yield* Effect.acquireRelease(
    Effect.try({
      try: () => {
        // the path names the database file (minos: `./exam.lmdb`); its folder must exist
        fs.mkdirSync(path.dirname(path.resolve(options.path)), { recursive: true })
        return open({ path: options.path, maxDbs: 8, ...(options.noSync === true ? { noSync: true } : {}) })
      },
      catch: (cause) => fail("Unavailable", `Cannot open the saga store at ${options.path}: ${String((cause as Error)?.message ?? cause)}`, cause)
    }),
    (r) => Effect.ignore(Effect.tryPromise(() => r.close()))
  )
  const executions = root.openDB<ExecutionRecord, string>({ name: "executions" })
  const byStatus = root.openDB<true, [string, number, string]>({ name: "bystatus" })
  const byDeadline = root.openDB<true, [number, string]>({ name: "bydeadline" })

  const unindex = (r: ExecutionRecord) => {
    byStatus.removeSync([r.status, r.createdAt, r.id])
    if (r.status === "paused" && r.deadline !== null) byDeadline.removeSync([r.deadline, r.id])
  }
  const index = (r: ExecutionRecord) => {
    byStatus.putSync([r.status, r.createdAt, r.id], true)
    if (r.status === "paused" && r.deadline !== null) byDeadline.putSync([r.deadline, r.id], true)
  }

  const write = <A>(what: string, f: () => A): Effect.Effect<A, SagaStoreError> =>
    Effect.try({
      try: () => root.transactionSync(f),
      catch: (e) => (e instanceof Refused ? e.error : fail("Unavailable", `${what}: ${String((e as Error)?.message ?? e)}`, e))
    })

  const read = <A>(what: string, f: () => A): Effect.Effect<A, SagaStoreError> =>
    Effect.try({ try: f, catch: (e) => fail("Unavailable", `${what}: ${String((e as Error)?.message ?? e)}`, e) })

  const create = Effect.fn("LmdbSagaStore.create")(function*(record: Omit<ExecutionRecord, "revision">) {
    const problem = check(record)
    if (problem !== undefined) return yield* Effect.fail(fail("InvalidInput", problem))
    const stored: ExecutionRecord = { ...record, data: JSON.parse(JSON.stringify(record.data)), revision: 1 }
    return yield* write("create", () => {
      if (executions.get(record.id) !== undefined) throw new Refused(fail("Conflict", `Execution ${record.id} exists`))
      executions.putSync(record.id, stored)
      index(stored)
      return stored
    })
  })

  const put = Effect.fn("LmdbSagaStore.put")(function*(record: Omit<ExecutionRecord, "revision">, expectedRevision: number) {
    const problem = check(record)
    if (problem !== undefined) return yield* Effect.fail(fail("InvalidInput", problem))
    return yield* write("put", () => {
      const current = executions.get(record.id)
      if (current === undefined) throw new Refused(fail("NotFound", `No execution ${record.id}`))
      if (current.revision !== expectedRevision) {
        throw new Refused(fail("Conflict", `Execution ${record.id} is at revision ${current.revision}, not ${expectedRevision}`))
      }
      const next: ExecutionRecord = { ...record, createdAt: current.createdAt, data: JSON.parse(JSON.stringify(record.data)), revision: current.revision + 1 }
      unindex(current)
      executions.putSync(record.id, next)
      index(next)
      return next
    })
  })

  const get = Effect.fn("LmdbSagaStore.get")(function*(id: string) {
    return Option.fromUndefinedOr(yield* read("get", () => executions.get(id)))
  })

  const list = Effect.fn("LmdbSagaStore.list")(function*(options?: { readonly status?: ExecutionStatus | undefined; readonly saga?: string | undefined; readonly limit?: number | undefined }) {
    const limit = options?.limit ?? 1000
    return yield* read("list", () => {
      const out: Array<ExecutionRecord> = []
      const statuses = options?.status === undefined ? ["created", "running", "paused", "finished", "errored"] : [options.status]
      const all: Array<ExecutionRecord> = []
      for (const status of statuses) {
        for (const key of byStatus.getKeys({ start: [status], end: [status, Number.MAX_SAFE_INTEGER, "\uffff"] })) {
          const r = executions.get(key[2])
          if (r !== undefined && (options?.saga === undefined || r.saga === options.saga)) all.push(r)
        }
      }
      all.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
      for (const r of all) {
        if (out.length >= limit) break
        out.push(r)
      }
      return out
    })
  })

  const due = Effect.fn("LmdbSagaStore.due")(function*(at: number, limit = 1000) {
    return yield* read("due", () => {
      const out: Array<ExecutionRecord> = []
      for (const key of byDeadline.getKeys({ start: [Number.MIN_SAFE_INTEGER], end: [at, "\uffff"] })) {
        const r = executions.get(key[1])
        if (r !== undefined && r.status === "paused") out.push(r)
        if (out.length >= limit) break
      }
      return out
    })
  })

  const prune = Effect.fn("LmdbSagaStore.prune")(function*(olderThan: number) {
    return yield* write("prune", () => {
      let n = 0
      for (const status of ["finished", "errored"] as const) {
        for (const key of Array.from(byStatus.getKeys({ start: [status], end: [status, Number.MAX_SAFE_INTEGER, "\uffff"] }))) {
          const r = executions.get(key[2])
          if (r === undefined || r.updatedAt >= olderThan) continue
          unindex(r)
          executions.removeSync(r.id)
          n++
        }
      }
      return n
    })
  })

  return SagaStore.of({ create, put, get, list, due, prune } satisfies SagaStoreShape)
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: { readonly path: string; readonly noSync?: boolean }): Layer.Layer<SagaStore, SagaStoreError> =>
  Layer.effect(SagaStore, make(options))
