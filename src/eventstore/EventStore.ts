/**
 * The `EventStore` port: append-only streams of events per aggregate, with optimistic concurrency
 * (an expected version), minos-style transactions (writes tagged with a transaction id stay invisible
 * outside it until committed) and a gap-safe global read for projections and relays.
 *
 * Backends: PostgreSQL (`PgEventStore`) and LMDB (`LmdbEventStore`); one conformance suite checks both.
 *
 * @since 0.1.0
 */
import { isJson, unstorableMessage, unstorableStringAt } from "../internal/Json.ts"
import { isUuid } from "../internal/Ids.ts"
import { Context, type Effect, Schema } from "effect"
import * as PortError from "../errors/PortError.ts"

/**
 * An event to append. `data` and `metadata` must be JSON.
 *
 * @category models
 * @since 0.1.0
 */
export interface NewEvent {
  readonly type: string
  readonly data: unknown
  readonly metadata?: Readonly<Record<string, unknown>>
}

/**
 * An event as stored.
 *
 * @category models
 * @since 0.1.0
 */
export interface StoredEvent {
  /** Global position: unique, increasing with insertion; 0 for events of an open transaction on LMDB. */
  readonly position: number
  readonly aggregateId: string
  readonly aggregate: string
  readonly version: number
  readonly type: string
  readonly data: unknown
  readonly metadata: Readonly<Record<string, unknown>>
  /** `null` for the committed main store. */
  readonly transactionId: string | null
  /** Epoch milliseconds. */
  readonly createdAt: number
}

/**
 * @category models
 * @since 0.1.0
 */
export interface AppendInput {
  readonly aggregate: string
  readonly aggregateId: string
  /** The stream's version the events were decided on (0 for a new stream). */
  readonly expectedVersion: number
  readonly events: ReadonlyArray<NewEvent>
  /** Write inside this (pending) transaction instead of the main store. */
  readonly transaction?: string | undefined
  /** Epoch milliseconds stamped on the events. */
  readonly now: number
}

/**
 * @category models
 * @since 0.1.0
 */
export interface AppendResult {
  readonly aggregateId: string
  readonly fromVersion: number
  readonly toVersion: number
}

/**
 * Where a global reader stands. Opaque: store it, pass it back. `Checkpoint.start` reads from the
 * beginning.
 *
 * @category models
 * @since 0.1.0
 */
export type Checkpoint = string

/** @since 0.1.0 */
export const start: Checkpoint = "0"

/**
 * @category errors
 * @since 0.1.0
 */
export const EventStoreErrorReason = Schema.Literals(["Conflict", "InvalidInput", "TransactionClosed", "Unavailable", "Corrupt", "Unknown"])

/**
 * The one error of the `EventStore` port. `Conflict`: the stream is not at the expected version
 * (reload and decide again); `TransactionClosed`: the transaction is not pending any more.
 *
 * @category errors
 * @since 0.1.0
 */
export class EventStoreError extends Schema.TaggedError<EventStoreError>()("EventStoreError", {
  reason: EventStoreErrorReason,
  message: Schema.String,
  aggregateId: Schema.optional(Schema.String),
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
export interface EventStoreShape {
  /** Appends events at `expectedVersion + 1 …`; a stream at another version fails with `Conflict` and writes nothing. */
  readonly append: (input: AppendInput) => Effect.Effect<AppendResult, EventStoreError>
  /** The stream's events with version > `afterVersion` (default 0), as seen from `transaction` (default: main store). */
  readonly readStream: (
    aggregateId: string,
    options?: { readonly afterVersion?: number | undefined; readonly transaction?: string | undefined }
  ) => Effect.Effect<ReadonlyArray<StoredEvent>, EventStoreError>
  /** The stream's current version (0 when it has no events), as seen from `transaction`. */
  readonly streamVersion: (aggregateId: string, options?: { readonly transaction?: string | undefined }) => Effect.Effect<number, EventStoreError>
  /**
   * Committed events after `checkpoint`, at most `limit`. Gap-safe: an event of a storage transaction
   * still in flight is never skipped — the read stops before it until it commits.
   */
  readonly readAll: (
    checkpoint: Checkpoint,
    limit: number
  ) => Effect.Effect<{ readonly events: ReadonlyArray<StoredEvent>; readonly checkpoint: Checkpoint }, EventStoreError>
  /** The checkpoint after the last committed event (what a reader that read everything would hold). */
  readonly head: Effect.Effect<Checkpoint, EventStoreError>
}

/**
 * @category services
 * @since 0.1.0
 */
export class EventStore extends Context.Service<EventStore, EventStoreShape>()("effect-minos/eventstore/EventStore") {}

/**
 * Aggregate and transaction ids are UUIDs.
 *
 * @since 0.1.0
 */
export { isUuid, NIL } from "../internal/Ids.ts"

/**
 * Checks an append's input for the backends; a string says what is wrong.
 *
 * @category validation
 * @since 0.1.0
 */
export const checkAppend = (input: AppendInput): string | undefined => {
  if (!isUuid(input.aggregateId)) return `Aggregate id ${JSON.stringify(input.aggregateId)} is not a UUID`
  if (typeof input.aggregate !== "string" || input.aggregate.length === 0) return "The aggregate name is empty"
  if (!Number.isInteger(input.expectedVersion) || input.expectedVersion < 0) return `Expected version must be a non-negative integer, got ${input.expectedVersion}`
  if (input.transaction !== undefined && !isUuid(input.transaction)) return `Transaction id ${JSON.stringify(input.transaction)} is not a UUID`
  if (!Number.isFinite(input.now)) return "The event time is not a number"
  if (input.events.length === 0) return "No events to append"
  for (const [i, e] of input.events.entries()) {
    if (typeof e.type !== "string" || e.type.length === 0) return `Event ${i} has no type`
    const bad = unstorableStringAt(e.data)
    if (bad !== undefined) return `Event ${i} (${e.type}) data: ${unstorableMessage(bad)}`
    if (!isJson(e.data)) return `Event ${i} (${e.type}) data is not JSON`
    if (e.metadata !== undefined && !isJson(e.metadata)) return `Event ${i} (${e.type}) metadata is not JSON`
  }
  return undefined
}
