/**
 * The `ProjectionStore` port: what a projection keeps beside its documents, in the same storage
 * transaction as them.
 *
 * - **Marks**: per (projection, aggregate id), the version of the last event applied. `lock` reads
 *   the mark and holds it for the ambient transaction: two transactions applying events of one
 *   aggregate to one projection are serialised (PostgreSQL: a row lock; LMDB: the row is checked
 *   again at commit and a change in between fails the unit with a retryable `Conflict`). Parking an
 *   event touches the same row, so an apply and a park of one aggregate never both commit unseen.
 * - **Parked events**: an event that arrived before its predecessor, stored until the predecessor
 *   has been applied (nothing is dropped; order holds).
 * - **State**: one JSON value per key (checkpoints, active generation, rebuild progress) with a
 *   revision for compare-and-set, so two runners never both advance one checkpoint.
 *
 * Backends: PostgreSQL (`PgProjectionStore`) and LMDB (`LmdbProjectionStore`), one conformance suite.
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Option, Schema } from "effect"
import * as PortError from "../errors/PortError.ts"
import { isJson } from "../internal/Json.ts"

/**
 * An event waiting for its predecessor.
 *
 * @category models
 * @since 0.1.0
 */
export interface Parked {
  readonly projection: string
  readonly aggregateId: string
  readonly version: number
  /** The event as it arrived (the published domain-event content). */
  readonly event: unknown
  /** Epoch ms. */
  readonly parkedAt: number
}

/**
 * A state value with its revision (1 after the first write).
 *
 * @category models
 * @since 0.1.0
 */
export interface StateRecord {
  readonly value: unknown
  readonly revision: number
}

/**
 * @category errors
 * @since 0.1.0
 */
export const ProjectionStoreErrorReason = Schema.Literals(["Conflict", "InvalidInput", "Unavailable", "Corrupt", "Unknown"])

/**
 * The one error of the port. `Conflict`: a state's revision moved, or (LMDB) a locked mark changed
 * before the commit; retry on fresh data.
 *
 * @category errors
 * @since 0.1.0
 */
export class ProjectionStoreError extends Schema.TaggedError<ProjectionStoreError>()("ProjectionStoreError", {
  reason: ProjectionStoreErrorReason,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  get [PortError.TypeId](): PortError.TypeId {
    return PortError.TypeId
  }
  get isRetryable(): boolean {
    return this.reason === "Conflict" || this.reason === "Unavailable"
  }
}

/**
 * @category services
 * @since 0.1.0
 */
export interface ProjectionStoreShape {
  /** The mark (0 when none), held for the ambient transaction (see the module header). */
  readonly lock: (projection: string, aggregateId: string) => Effect.Effect<number, ProjectionStoreError>
  /** Sets the mark, in the ambient transaction (after `lock`). */
  readonly setMark: (projection: string, aggregateId: string, version: number) => Effect.Effect<void, ProjectionStoreError>
  /** The mark as committed (inside a unit of work: with the unit's own writes), without locking. */
  readonly mark: (projection: string, aggregateId: string) => Effect.Effect<number, ProjectionStoreError>
  /** Stores an early event (once: parking the same version again keeps the first). */
  readonly park: (entry: Parked) => Effect.Effect<void, ProjectionStoreError>
  /** Removes and returns the parked event of that version, if any. */
  readonly unpark: (projection: string, aggregateId: string, version: number) => Effect.Effect<Option.Option<Parked>, ProjectionStoreError>
  /** Parked events of a projection, by aggregate id and version. */
  readonly parked: (projection: string, options?: { readonly limit?: number | undefined }) => Effect.Effect<ReadonlyArray<Parked>, ProjectionStoreError>
  readonly countParked: (projection: string) => Effect.Effect<number, ProjectionStoreError>
  readonly getState: (key: string) => Effect.Effect<Option.Option<StateRecord>, ProjectionStoreError>
  /**
   * Writes a state value if its revision is still `expectedRevision` (0: it must not exist yet);
   * `Conflict` otherwise. Returns the new revision.
   */
  readonly putState: (key: string, value: unknown, expectedRevision: number) => Effect.Effect<number, ProjectionStoreError>
  /** Forgets every mark and parked event of `projection` (a dropped generation). */
  readonly clear: (projection: string) => Effect.Effect<void, ProjectionStoreError>
}

/**
 * @category services
 * @since 0.1.0
 */
export class ProjectionStore extends Context.Service<ProjectionStore, ProjectionStoreShape>()("effect-minos/readmodel/ProjectionStore") {}

const namePattern = /^[A-Za-z][A-Za-z0-9_.:#@-]{0,199}$/

/** Checks a projection name (or state key) and, when given, an aggregate id and version. @since 0.1.0 */
export const checkKey = (projection: string, aggregateId?: string, version?: number): string | undefined => {
  if (typeof projection !== "string" || !namePattern.test(projection)) return `Invalid projection name ${JSON.stringify(projection)}`
  if (aggregateId !== undefined && (typeof aggregateId !== "string" || aggregateId.length === 0 || aggregateId.length > 200 || aggregateId.includes("\u0000"))) {
    return `Invalid aggregate id ${JSON.stringify(aggregateId)}`
  }
  if (version !== undefined && (!Number.isSafeInteger(version) || version < 0)) return `Version must be a non-negative integer, got ${version}`
  return undefined
}

/** Checks a state value or parked event: JSON. @since 0.1.0 */
export const checkValue = (value: unknown): string | undefined => (isJson(value) ? undefined : "The value is not JSON")
