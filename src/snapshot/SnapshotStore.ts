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
import { Context, Effect, Option, Schema, type SchemaAST, type Stream } from "effect"
import * as PortError from "../errors/PortError.ts"
import type { SnapshotCodec } from "../domain/Aggregate.ts"
import type { Condition, Ordering } from "../query/Condition.ts"
import { checkQuery, compareIn, evaluateIn, pathIn } from "../query/Query.ts"

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
  get [PortError.TypeId](): PortError.TypeId {
    return PortError.TypeId
  }
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

// ---------------------------------------------------------------------------------------------
// the parts of the port both backends share (not part of the user-facing API)

/** Checks a find's condition, orderings and limit; the orderings as a list. */
export const prepareFind = (
  aggregate: { readonly snapshot: { readonly document: { readonly ast: SchemaAST.AST } } },
  options: { readonly condition: Condition; readonly ordering?: ReadonlyArray<Ordering> | Ordering | undefined; readonly limit?: number | undefined }
): { readonly ok: true; readonly ordering: ReadonlyArray<Ordering> } | { readonly ok: false; readonly message: string } => {
  const ordering: ReadonlyArray<Ordering> = options.ordering === undefined ? [] : Array.isArray(options.ordering) ? options.ordering : [options.ordering as Ordering]
  const problem = checkQuery(aggregate.snapshot.document.ast, options.condition, ordering)
  if (problem !== undefined) return { ok: false, message: problem }
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 0)) {
    return { ok: false, message: `limit must be a non-negative integer, got ${options.limit}` }
  }
  return { ok: true, ordering }
}

/** `get` on top of `getOption`: a missing aggregate is `NotFound`, a deleted one `Deleted`. */
export const existing = (aggregate: string, aggregateId: string, found: Option.Option<SnapshotRecord>): Effect.Effect<SnapshotRecord, SnapshotStoreError> =>
  Option.isNone(found)
    ? Effect.fail(new SnapshotStoreError({ reason: "NotFound", message: `${aggregate} ${aggregateId} does not exist` }))
    : found.value.deleted
    ? Effect.fail(new SnapshotStoreError({ reason: "Deleted", message: `${aggregate} ${aggregateId} was deleted` }))
    : Effect.succeed(found.value)

/** The value a path addresses; `undefined` when absent (SQL NULL). */
export const valueAt = (record: SnapshotRecord, path: string): unknown => {
  switch (path) {
    case "uuid":
      return record.aggregateId
    case "version":
      return record.version
    case "createdAt":
      return record.createdAt
    case "updatedAt":
      return record.updatedAt
  }
  return pathIn(record.document, path)
}

/** SQL three-valued logic collapsed as WHERE does: unknown → not matched. */
export const evaluate = (c: Condition, record: SnapshotRecord): boolean | undefined => evaluateIn(c, (path) => valueAt(record, path))

/** Sorts as `ORDER BY … NULLS LAST` (ASC) / `NULLS FIRST` (DESC), PostgreSQL's defaults. */
export const compareRecords = (ordering: ReadonlyArray<Ordering>) => (a: SnapshotRecord, b: SnapshotRecord): number =>
  compareIn(ordering, (p) => valueAt(a, p), (p) => valueAt(b, p))
