/**
 * minos transactions: a named scope whose event, snapshot and outbox writes stay invisible outside it
 * until it commits. Sagas use one per execution; participants write inside it and the coordinator
 * reserves, then commits (or rejects) it everywhere.
 *
 * Status moves `pending → reserving → reserved → committing → committed`, or to `rejected` from
 * `pending`, `reserving` or `reserved`. Any other move is refused (`IllegalTransition`), by the store
 * itself (a PostgreSQL trigger; inside the LMDB write transaction).
 *
 * - `reserve` checks that none of the transaction's writes collides with the destination (the parent
 *   transaction or the main store: same aggregate and version already there) or with a sibling
 *   transaction that is reserving/reserved/committing. On a collision the transaction is rejected.
 * - `commit` reserves first when still pending, then moves the writes into the destination: events
 *   get new global positions there, snapshots replace the destination's when newer, outbox rows become
 *   publishable (main store) or belong to the parent.
 * - `reject` discards the writes.
 *
 * @since 0.1.0
 */
import { Context, type Effect, Schema } from "effect"
import * as PortError from "../errors/PortError.ts"

/**
 * @category models
 * @since 0.1.0
 */
export const TransactionStatus = Schema.Literals(["pending", "reserving", "reserved", "committing", "committed", "rejected"])
export type TransactionStatus = typeof TransactionStatus.Type

/**
 * @category models
 * @since 0.1.0
 */
export interface TransactionRecord {
  readonly id: string
  /** The destination transaction, or `null` for the main store. */
  readonly parent: string | null
  readonly status: TransactionStatus
  readonly createdAt: number
  readonly updatedAt: number
}

/**
 * The legal moves, shared by both backends.
 *
 * @since 0.1.0
 */
export const transitions: Readonly<Record<TransactionStatus, ReadonlyArray<TransactionStatus>>> = {
  pending: ["reserving", "rejected"],
  reserving: ["reserved", "rejected"],
  reserved: ["committing", "rejected"],
  committing: ["committed"],
  committed: [],
  rejected: []
}

/**
 * @category errors
 * @since 0.1.0
 */
export class TransactionError extends Schema.TaggedError<TransactionError>()("TransactionError", {
  reason: Schema.Literals(["NotFound", "AlreadyExists", "IllegalTransition", "Conflict", "InvalidInput", "Unavailable", "Unknown"]),
  transaction: Schema.String,
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
export interface TransactionsShape {
  /** Opens a pending transaction (a new id unless given) inside `parent` (default: the main store). */
  readonly begin: (options?: { readonly id?: string | undefined; readonly parent?: string | null | undefined }) => Effect.Effect<TransactionRecord, TransactionError>
  readonly get: (id: string) => Effect.Effect<TransactionRecord, TransactionError>
  /** `[outermost, …, id]`: the transactions whose writes a read inside `id` sees, innermost last. */
  readonly chain: (id: string) => Effect.Effect<ReadonlyArray<string>, TransactionError>
  readonly reserve: (id: string) => Effect.Effect<TransactionRecord, TransactionError>
  readonly commit: (id: string) => Effect.Effect<TransactionRecord, TransactionError>
  readonly reject: (id: string) => Effect.Effect<TransactionRecord, TransactionError>
  /** Transactions in `status` whose last change is older than `olderThan` (epoch ms). */
  readonly list: (options: { readonly status?: TransactionStatus | undefined; readonly olderThan?: number | undefined }) => Effect.Effect<ReadonlyArray<TransactionRecord>, TransactionError>
}

/**
 * The minos transaction the current fiber writes in, when a handler runs for a saga (set by the
 * `transactional` middleware and by the saga manager for local steps). Repositories write inside it
 * unless told otherwise.
 *
 * @category services
 * @since 0.1.0
 */
export const CurrentTransaction = Context.Reference<string | undefined>("effect-minos/eventstore/CurrentTransaction", {
  defaultValue: () => undefined
})

/**
 * @category services
 * @since 0.1.0
 */
export class Transactions extends Context.Service<Transactions, TransactionsShape>()("effect-minos/eventstore/Transactions") {}
