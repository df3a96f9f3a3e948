/**
 * The storage transaction every write of a command (events, snapshot, outbox rows) and of a message
 * handler (inbox row, the user's read-model writes) joins. On PostgreSQL it is the ambient
 * `sql.withTransaction`; on LMDB the writes are staged and applied in one synchronous LMDB write
 * transaction at the end, with their conditions (expected versions, dedupe keys) checked again inside.
 *
 * Nested `transaction` calls join the outermost one.
 *
 * @since 0.1.0
 */
import { Context, type Effect, Schema } from "effect"
import * as PortError from "../errors/PortError.ts"

/**
 * The storage could not begin or commit a transaction. `Unavailable` is retryable.
 *
 * @category errors
 * @since 0.1.0
 */
export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  reason: Schema.Literals(["Unavailable", "Unknown"]),
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
export interface UnitOfWorkShape {
  /** Which backend this is; stores of another backend cannot join its transactions. */
  readonly backend: "postgres" | "lmdb"
  /** Runs `effect` in one storage transaction: all of its writes commit together or not at all. */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StorageError, R>
  /** Runs `effect` after the outermost transaction committed (at once when none is open). */
  readonly afterCommit: <R>(effect: Effect.Effect<void, never, R>) => Effect.Effect<void, never, R>
}

/**
 * @category services
 * @since 0.1.0
 */
export class UnitOfWork extends Context.Service<UnitOfWork, UnitOfWorkShape>()("effect-minos/storage/UnitOfWork") {}
