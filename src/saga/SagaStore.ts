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
