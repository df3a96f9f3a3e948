/**
 * The `SnapshotStore` port: the latest state of each aggregate (per transaction), written in the
 * same storage transaction as its events, so a read never has to catch up. Queries use minos's
 * `Condition` language over the snapshot document; field paths are checked against the aggregate's
 * Schema and values are always bound as parameters.
 *
 * Backends: PostgreSQL (`PgSnapshotStore`) and LMDB (`LmdbSnapshotStore`); one conformance suite.
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Option, Schema, type Stream } from "effect"
import type { SnapshotCodec } from "../domain/Aggregate.ts"
import type { Condition, Ordering } from "./Condition.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface SnapshotRecord {
  readonly aggregate: string
  readonly aggregateId: string
  readonly version: number
  /** The encoded state (JSON). */
  readonly document: unknown
  readonly deleted: boolean
  /** Epoch ms of the first event. */
  readonly createdAt: number
  /** Epoch ms of the last event. */
  readonly updatedAt: number
  /** `null` for the committed main store. */
  readonly transactionId: string | null
}

/**
 * What a query needs to know of the aggregate: its name and the Schema its field paths are checked against.
 *
 * @category models
 * @since 0.1.0
 */
export interface Queryable {
  readonly name: string
  readonly snapshot: Pick<SnapshotCodec<unknown>, "document">
}

/**
 * @category models
 * @since 0.1.0
 */
export interface FindOptions {
  readonly condition: Condition
  readonly ordering?: ReadonlyArray<Ordering> | Ordering | undefined
  readonly limit?: number | undefined
  /** Deleted aggregates are hidden unless this is true. */
  readonly includeDeleted?: boolean | undefined
  readonly transaction?: string | undefined
}

/**
 * @category errors
 * @since 0.1.0
 */
export class SnapshotStoreError extends Schema.TaggedError<SnapshotStoreError>()("SnapshotStoreError", {
  reason: Schema.Literals(["NotFound", "Deleted", "InvalidQuery", "InvalidInput", "Unavailable", "Corrupt", "Unknown"]),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

/**
 * @category services
 * @since 0.1.0
 */
export interface SnapshotStoreShape {
  /** Stores the snapshot for `(aggregateId, transactionId)`, replacing an older version. */
  readonly put: (record: SnapshotRecord) => Effect.Effect<void, SnapshotStoreError>
  /** The snapshot as seen from `transaction` (innermost write wins), deleted ones included. */
  readonly getOption: (
    aggregate: string,
    aggregateId: string,
    options?: { readonly transaction?: string | undefined }
  ) => Effect.Effect<Option.Option<SnapshotRecord>, SnapshotStoreError>
  /** Like `getOption`, but a missing aggregate fails with `NotFound` and a deleted one with `Deleted`. */
  readonly get: (
    aggregate: string,
    aggregateId: string,
    options?: { readonly transaction?: string | undefined }
  ) => Effect.Effect<SnapshotRecord, SnapshotStoreError>
  /** Snapshots of `aggregate` matching the condition, streamed. */
  readonly find: (aggregate: Queryable, options: FindOptions) => Stream.Stream<SnapshotRecord, SnapshotStoreError>
}

/**
 * @category services
 * @since 0.1.0
 */
export class SnapshotStore extends Context.Service<SnapshotStore, SnapshotStoreShape>()("effect-minos/snapshot/SnapshotStore") {}
