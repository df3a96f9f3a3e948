/**
 * The domain errors the framework itself raises for entity-style aggregates.
 *
 * A user's own domain errors are plain `Schema.TaggedError` classes returned from `decide`; the
 * transports answer them (a 400 reply on the broker; over HTTP the status `HttpStatus.withStatus`
 * gives the class, default 400).
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The aggregate does not exist.
 *
 * @category errors
 * @since 0.1.0
 */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  aggregate: Schema.String,
  id: Schema.String
}) {
  override get message(): string {
    return `${this.aggregate} ${this.id} does not exist`
  }
}

/**
 * The aggregate was deleted; it can be neither updated nor deleted again.
 *
 * @category errors
 * @since 0.1.0
 */
export class AlreadyDeleted extends Schema.TaggedError<AlreadyDeleted>()("AlreadyDeleted", {
  aggregate: Schema.String,
  id: Schema.String
}) {
  override get message(): string {
    return `${this.aggregate} ${this.id} was deleted`
  }
}

/**
 * A create command reached an aggregate that already exists.
 *
 * @category errors
 * @since 0.1.0
 */
export class AlreadyExists extends Schema.TaggedError<AlreadyExists>()("AlreadyExists", {
  aggregate: Schema.String,
  id: Schema.String
}) {
  override get message(): string {
    return `${this.aggregate} ${this.id} already exists`
  }
}

/**
 * The command's payload is not valid for the aggregate: `field` names the offending field (empty for
 * the payload as a whole) and `message` says what was expected.
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidCommand extends Schema.TaggedError<InvalidCommand>()("InvalidCommand", {
  aggregate: Schema.String,
  field: Schema.String,
  message: Schema.String
}) {}

/**
 * Any of the framework's entity errors.
 *
 * @category errors
 * @since 0.1.0
 */
export type EntityError = NotFound | AlreadyDeleted | AlreadyExists | InvalidCommand
