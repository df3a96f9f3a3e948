/**
 * The domain errors the framework itself raises for entity-style aggregates, and the marker that
 * lets transports map any user domain error to a reply (400 on the broker; 4xx over HTTP).
 *
 * A user's own domain errors are plain `Schema.TaggedError` classes returned from `decide`; give
 * them an `httpStatus` annotation through {@link withStatus} to pick the HTTP status (default 400).
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

/**
 * HTTP statuses of the framework's own domain errors; user errors default to 400.
 *
 * @since 0.1.0
 */
export const httpStatusOf = (error: { readonly _tag: string }): number => {
  const annotated = (error as { readonly httpStatus?: unknown }).httpStatus
  if (typeof annotated === "number") return annotated
  switch (error._tag) {
    case "NotFound":
      return 404
    case "AlreadyDeleted":
      return 410
    case "AlreadyExists":
      return 409
    case "InvalidCommand":
      return 400
    default:
      return 400
  }
}

/**
 * Gives a user domain error class a fixed HTTP status (e.g. 422 or 409) without touching its fields.
 *
 * @since 0.1.0
 */
export const withStatus = <C extends abstract new(...args: Array<any>) => object>(status: number) => (cls: C): C => {
  Object.defineProperty(cls.prototype, "httpStatus", { value: status, enumerable: false })
  return cls
}
