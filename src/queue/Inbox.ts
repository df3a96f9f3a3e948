/**
 * The inbox: which messages this service has handled, and the dead letters it gave up on.
 *
 * The consumer claims `(topic, identifier)` in the same storage transaction as the handler's writes,
 * so a redelivered message finds its claim and has no second effect. A message that keeps failing is
 * moved to the dead letters with its error and attempts, and the partition moves on; dead letters can
 * be listed and replayed.
 *
 * Backends: PostgreSQL and LMDB, checked by one conformance suite.
 *
 * @since 0.1.0
 */
import { Context, type Effect, Schema } from "effect"
import * as PortError from "../errors/PortError.ts"

/**
 * A message the consumer gave up on.
 *
 * @category models
 * @since 0.1.0
 */
export interface DeadLetter {
  readonly id: number
  /** The consumer group that failed to handle it. */
  readonly group: string
  readonly topic: string
  readonly key: string | null
  /** The record exactly as it was received. */
  readonly value: string
  readonly headers: Readonly<Record<string, string>>
  /** The inbox claim of the failed handling (the message identifier, `#n` per handler when a topic has several), when the envelope could be read. */
  readonly identifier: string | null
  /** The last error, as text (never a stack trace). */
  readonly error: string
  readonly attempts: number
  readonly firstFailedAt: number
  readonly lastFailedAt: number
}

/**
 * @category errors
 * @since 0.1.0
 */
export class InboxError extends Schema.TaggedError<InboxError>()("InboxError", {
  reason: Schema.Literals(["NotFound", "InvalidInput", "Unavailable", "Unknown"]),
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
export interface InboxShape {
  /**
   * Records that `group` handled `(topic, identifier)`, in the ambient storage transaction. `false`
   * when it was already recorded: the message is a duplicate and must have no effect.
   */
  readonly claim: (group: string, topic: string, identifier: string, now: number) => Effect.Effect<boolean, InboxError>
  /** Forgets a claim, so the message is handled again when it comes back (dead-letter replay). */
  readonly release: (group: string, topic: string, identifier: string) => Effect.Effect<void, InboxError>
  /** Stores a dead letter (in the ambient storage transaction) and returns its id. */
  readonly deadLetter: (letter: Omit<DeadLetter, "id">) => Effect.Effect<number, InboxError>
  readonly listDeadLetters: (options?: { readonly topic?: string | undefined; readonly limit?: number | undefined }) => Effect.Effect<ReadonlyArray<DeadLetter>, InboxError>
  readonly getDeadLetter: (id: number) => Effect.Effect<DeadLetter, InboxError>
  /** Removes a dead letter (after it was replayed, in the same transaction as staging the replay). */
  readonly removeDeadLetter: (id: number) => Effect.Effect<void, InboxError>
  /** Forgets claims older than `olderThan` (epoch ms); returns how many. Keeps the table bounded. */
  readonly prune: (olderThan: number) => Effect.Effect<number, InboxError>
}

/**
 * @category services
 * @since 0.1.0
 */
export class Inbox extends Context.Service<Inbox, InboxShape>()("effect-minos/queue/Inbox") {}
