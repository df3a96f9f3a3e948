/**
 * Where saga executions are kept between steps: every pause and step boundary is written here, so an
 * execution survives a restart and resumes when its reply arrives. LMDB by default
 * (`saga.storage.path`), PostgreSQL as an alternative; one conformance suite checks both.
 *
 * Writes are optimistic: each record carries a `revision`, and `put` with an expected revision fails
 * with `Conflict` when another writer (another instance, a timer) moved the execution first.
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Option, Schema } from "effect"
import * as PortError from "../errors/PortError.ts"
import { isUuid } from "../internal/Ids.ts"
import { isJson } from "../internal/Json.ts"

/**
 * @category models
 * @since 0.1.0
 */
export const ExecutionStatus = Schema.Literals(["created", "running", "paused", "finished", "errored"])
export type ExecutionStatus = typeof ExecutionStatus.Type

/**
 * A stored execution. `data` is the execution's full state as JSON (owned by the saga manager);
 * the other fields are indexed copies for queries.
 *
 * @category models
 * @since 0.1.0
 */
export interface ExecutionRecord {
  readonly id: string
  readonly saga: string
  readonly version: number
  readonly status: ExecutionStatus
  /** Epoch ms when a paused execution times out (the earliest of step and saga deadlines); null otherwise. */
  readonly deadline: number | null
  readonly data: unknown
  readonly createdAt: number
  readonly updatedAt: number
  /** Starts at 1; `put` increments it. */
  readonly revision: number
}

/**
 * @category errors
 * @since 0.1.0
 */
export class SagaStoreError extends Schema.TaggedError<SagaStoreError>()("SagaStoreError", {
  reason: Schema.Literals(["NotFound", "Conflict", "InvalidInput", "Unavailable", "Unknown"]),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  get [PortError.TypeId](): PortError.TypeId {
    return PortError.TypeId
  }
  get isRetryable(): boolean {
    return this.reason === "Unavailable" || this.reason === "Conflict"
  }
}

/**
 * @category services
 * @since 0.1.0
 */
export interface SagaStoreShape {
  /** Stores a new execution (revision 1); `Conflict` if the id exists. */
  readonly create: (record: Omit<ExecutionRecord, "revision">) => Effect.Effect<ExecutionRecord, SagaStoreError>
  /** Replaces an execution whose stored revision is `expectedRevision`; returns it with revision + 1. */
  readonly put: (record: Omit<ExecutionRecord, "revision">, expectedRevision: number) => Effect.Effect<ExecutionRecord, SagaStoreError>
  readonly get: (id: string) => Effect.Effect<Option.Option<ExecutionRecord>, SagaStoreError>
  /** Executions by status (all when omitted), oldest first, at most `limit` (default 1000). */
  readonly list: (options?: { readonly status?: ExecutionStatus | undefined; readonly saga?: string | undefined; readonly limit?: number | undefined }) => Effect.Effect<ReadonlyArray<ExecutionRecord>, SagaStoreError>
  /** Paused executions whose deadline is at or before `at` (epoch ms), earliest first. */
  readonly due: (at: number, limit?: number) => Effect.Effect<ReadonlyArray<ExecutionRecord>, SagaStoreError>
  /** Removes finished/errored executions last updated before `olderThan`; returns how many. */
  readonly prune: (olderThan: number) => Effect.Effect<number, SagaStoreError>
}

/**
 * @category services
 * @since 0.1.0
 */
export class SagaStore extends Context.Service<SagaStore, SagaStoreShape>()("effect-minos/saga/SagaStore") {}

// ---------------------------------------------------------------------------------------------
// the input rules both backends enforce (not part of the user-facing API)

export const STATUSES: ReadonlyArray<ExecutionStatus> = ExecutionStatus.literals

export const isStatus = (u: unknown): u is ExecutionStatus => typeof u === "string" && (STATUSES as ReadonlyArray<string>).includes(u)

/** Epoch ms from 1970 to the last date JavaScript (and PostgreSQL) can hold. */
export const isTime = (u: unknown): u is number => typeof u === "number" && Number.isFinite(u) && u >= 0 && u <= 8.64e15

export const error = (reason: SagaStoreError["reason"], message: string, cause?: unknown) =>
  new SagaStoreError({ reason, message, ...(cause === undefined ? {} : { cause }) })

/** What is wrong with a record to write, if anything. */
export const checkRecord = (r: Omit<ExecutionRecord, "revision">): string | undefined => {
  if (typeof r !== "object" || r === null) return "The execution is not a record"
  if (typeof r.id !== "string" || !isUuid(r.id)) return `Execution id ${JSON.stringify(r.id)} is not a UUID`
  if (typeof r.saga !== "string" || r.saga.length === 0) return "The saga name is empty"
  if (!Number.isInteger(r.version) || r.version < 1) return `The saga version must be a positive integer, got ${r.version}`
  if (!isStatus(r.status)) return `Unknown execution status ${JSON.stringify(r.status)}`
  if (r.deadline !== null && !isTime(r.deadline)) return `The deadline must be null or epoch milliseconds, got ${r.deadline}`
  if (!isTime(r.createdAt) || !isTime(r.updatedAt)) return "createdAt and updatedAt must be epoch milliseconds"
  if (!isJson(r.data)) return "The execution data is not JSON"
  return undefined
}

export const checkLimit = (limit: number): string | undefined =>
  Number.isInteger(limit) && limit >= 0 ? undefined : `The limit must be a non-negative integer, got ${limit}`
