/**
 * The transactional outbox: messages written in the same storage transaction as the change that
 * caused them, then published by the relay (`OutboxRelay`) and removed only after the broker acked.
 * Rows written inside a minos transaction wait for its commit (reject discards them).
 *
 * Backends: PostgreSQL (`FOR UPDATE SKIP LOCKED` claims, so several relays may run) and LMDB (lease
 * claims). One conformance suite checks both.
 *
 * @since 0.1.0
 */
import { Context, type Effect, Schema } from "effect"
import * as PortError from "../errors/PortError.ts"
import { acknowledgedBy, type OutgoingRecord } from "../broker/Broker.ts"

/**
 * A row waiting to be published.
 *
 * @category models
 * @since 0.1.0
 */
export interface OutboxRow extends OutgoingRecord {
  readonly id: number
  readonly createdAt: number
}

/**
 * @category errors
 * @since 0.1.0
 */
export class OutboxError extends Schema.TaggedError<OutboxError>()("OutboxError", {
  reason: Schema.Literals(["InvalidInput", "TransactionClosed", "Unavailable", "Unknown"]),
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
export interface OutboxShape {
  /** Stores the records in the ambient storage transaction (or its own), inside `transaction` if given. */
  readonly stage: (records: ReadonlyArray<OutgoingRecord>, options?: { readonly transaction?: string | undefined }) => Effect.Effect<void, OutboxError>
  /**
   * Claims up to `limit` publishable rows (oldest first), hands them to `publish`, and deletes them
   * once it succeeded. If `publish` fails, the rows stay and are offered again, except those the
   * failure reports as acknowledged (`BrokerError.acknowledged`, see {@link acknowledgedRows}): they
   * are deleted before the failure propagates. Returns how many were published.
   */
  readonly process: <E, R>(
    limit: number,
    publish: (rows: ReadonlyArray<OutboxRow>) => Effect.Effect<void, E, R>
  ) => Effect.Effect<number, OutboxError | E, R>
  /** Publishable rows not yet published (a count, for health and tests). */
  readonly pending: Effect.Effect<number, OutboxError>
  /**
   * Resolves when a commit made rows publishable (any process on PostgreSQL through LISTEN/NOTIFY; this
   * process on LMDB) or after `maxWaitMs`, whichever comes first. The relay's idle wait.
   */
  readonly awaitWork: (maxWaitMs: number) => Effect.Effect<void>
}

/**
 * The rows a failed `publish` of `rows` acknowledged, which the outbox deletes: those at the indices
 * the error reports, except a row that follows an unacknowledged row of the same topic and key. That
 * one stays and goes out again after it, so the last copy of each key's records on the broker is in
 * order even if a broker acknowledged records out of order.
 *
 * @since 0.1.0
 */
export const acknowledgedRows = <Row extends OutgoingRecord>(rows: ReadonlyArray<Row>, error: unknown): Array<Row> => {
  const acked = new Set(acknowledgedBy(error))
  if (acked.size === 0) return []
  const held = new Set<string>()
  const out: Array<Row> = []
  for (const [i, row] of rows.entries()) {
    const key = row.key === null ? undefined : `${row.topic}\u0000${row.key}`
    if (acked.has(i) && (key === undefined || !held.has(key))) out.push(row)
    else if (key !== undefined) held.add(key)
  }
  return out
}

/**
 * @category services
 * @since 0.1.0
 */
export class Outbox extends Context.Service<Outbox, OutboxShape>()("effect-minos/queue/Outbox") {}
