/**
 * The `Broker` port: publish records to topics and consume them in consumer groups, with Kafka's
 * semantics (per-key order through partitions, group offsets committed only after the handler
 * finished, redelivery of whatever was not committed). Backends: Kafka (`KafkaBroker`) and
 * in-process (`MemoryBroker`), both checked by one conformance suite.
 *
 * The port moves opaque records; the message envelope, outbox and inbox sit on top of it.
 *
 * @since 0.1.0
 */
import { Context, type Effect, Schema, type Scope } from "effect"
import * as PortError from "../errors/PortError.ts"

/**
 * A record to publish. `key` chooses the partition (same key → same partition → same order).
 *
 * @category models
 * @since 0.1.0
 */
export interface OutgoingRecord {
  readonly topic: string
  readonly key: string | null
  readonly value: string
  readonly headers: Readonly<Record<string, string>>
}

/**
 * A consumed record with its position.
 *
 * @category models
 * @since 0.1.0
 */
export interface DeliveredRecord extends OutgoingRecord {
  readonly partition: number
  /** The record's offset in its partition, as a decimal string (Kafka offsets are 64-bit). */
  readonly offset: string
  readonly timestamp: number
}

/**
 * How a consumer group member reads.
 *
 * @category models
 * @since 0.1.0
 */
export interface ConsumeOptions {
  /** Consumer group: members share the partitions; each group gets every record once. */
  readonly group: string
  readonly topics: ReadonlyArray<string>
  /**
   * Handles the next records of ONE partition, in order. The group's offset advances past them only
   * after this succeeds; if it fails or dies, the same records are delivered again.
   */
  readonly handle: (records: ReadonlyArray<DeliveredRecord>) => Effect.Effect<void, unknown>
  /** Partitions handled at once by this member (default 4). */
  readonly concurrency?: number
  /** Start from the oldest record when the group has no offset yet (default true). */
  readonly fromBeginning?: boolean
  /** Most records handed to `handle` at once (default 500). */
  readonly maxBatch?: number
  /**
   * On shutdown, how long handlers already running may take to finish before they are interrupted
   * (their records then stay uncommitted and are redelivered). Default 10 s.
   */
  readonly shutdownGraceMs?: number
  /**
   * A group of this member alone, for per-instance streams such as replies: it starts at the end of
   * the log (unless `fromBeginning` is true), records no offsets, and is removed when the member
   * leaves, so restarts leave nothing behind on the broker. A failed `handle` is retried in place.
   * Default false.
   */
  readonly ephemeral?: boolean
}

/**
 * @category errors
 * @since 0.1.0
 */
export const BrokerErrorReason = Schema.Literals(["Unavailable", "Timeout", "InvalidTopic", "Rejected", "Unknown"])

/**
 * The one error of the `Broker` port. `Unavailable` and `Timeout` are retryable.
 *
 * @category errors
 * @since 0.1.0
 */
export class BrokerError extends Schema.TaggedError<BrokerError>()("BrokerError", {
  reason: BrokerErrorReason,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect()),
  /**
   * On a `publish` that failed part-way: the indices (into the published records) of the records the
   * broker acknowledged. Absent or empty: none is known to be written.
   */
  acknowledged: Schema.optional(Schema.Array(Schema.Int))
}) {
  get [PortError.TypeId](): PortError.TypeId {
    return PortError.TypeId
  }
  get isRetryable(): boolean {
    return this.reason === "Unavailable" || this.reason === "Timeout"
  }
}

/**
 * @category services
 * @since 0.1.0
 */
export interface BrokerShape {
  /**
   * Publishes the records; succeeds once the broker acknowledged every one of them. A failure that
   * happened part-way lists in `BrokerError.acknowledged` the records that were acknowledged all the
   * same; the others may or may not have been written and are to be published again. Records of one
   * topic and key go out in order: one is never acknowledged while an earlier one with the same topic
   * and key was not.
   */
  readonly publish: (records: ReadonlyArray<OutgoingRecord>) => Effect.Effect<void, BrokerError>
  /** Creates the topics that do not exist yet. */
  readonly ensureTopics: (topics: ReadonlyArray<string>) => Effect.Effect<void, BrokerError>
  /** Joins a consumer group and handles records until the scope closes. */
  readonly consume: (options: ConsumeOptions) => Effect.Effect<void, BrokerError, Scope.Scope>
  /** Cheap liveness check for health endpoints. */
  readonly ping: Effect.Effect<void, BrokerError>
}

/**
 * @category services
 * @since 0.1.0
 */
export class Broker extends Context.Service<Broker, BrokerShape>()("effect-minos/broker/Broker") {}

const topicPattern = /^[A-Za-z0-9._-]{1,249}$/

/**
 * Kafka's topic-name rule, enforced on every backend so a name that works in-process works on Kafka.
 *
 * @since 0.1.0
 */
export const isValidTopic = (topic: string): boolean => topicPattern.test(topic) && topic !== "." && topic !== ".."

/**
 * The indices of the records a failed `publish` reports as acknowledged (empty for any other error).
 *
 * @since 0.1.0
 */
export const acknowledgedBy = (error: unknown): ReadonlyArray<number> =>
  typeof error === "object" && error !== null && (error as { _tag?: unknown })._tag === "BrokerError"
    ? (error as BrokerError).acknowledged ?? []
    : []
