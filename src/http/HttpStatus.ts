/**
 * HTTP statuses of domain errors, attached at the transport edge: the domain's error classes know
 * nothing of HTTP. The framework's entity errors have their statuses here; a user's own domain
 * error answers 400 unless its class is given one with {@link withStatus}.
 *
 * ```ts
 * class OverBudget extends Schema.TaggedError<OverBudget>()("OverBudget", { limit: Schema.Number }) {}
 * HttpStatus.withStatus(422)(OverBudget)
 * ```
 *
 * @since 0.1.0
 */
import { AlreadyDeleted, AlreadyExists, InvalidCommand, NotFound } from "../domain/DomainError.ts"

type ErrorClass = abstract new(...args: Array<any>) => object

const statuses = new Map<ErrorClass, number>([
  [NotFound, 404],
  [AlreadyDeleted, 410],
  [AlreadyExists, 409],
  [InvalidCommand, 400]
])

/**
 * Gives a domain error class a fixed HTTP status (e.g. 422 or 409) without touching the class.
 *
 * @since 0.1.0
 */
export const withStatus = <C extends ErrorClass>(status: number) => (cls: C): C => {
  if (!Number.isInteger(status) || status < 400 || status > 499) throw new RangeError(`A domain error answers 4xx, got ${status}`)
  statuses.set(cls, status)
  return cls
}

/**
 * The status of a domain error: its class's (or a base class's), else 400.
 *
 * @since 0.1.0
 */
export const statusOf = (error: object): number => {
  for (let proto = Object.getPrototypeOf(error); proto !== null; proto = Object.getPrototypeOf(proto)) {
    const status = statuses.get(proto.constructor as ErrorClass)
    if (status !== undefined) return status
  }
  return 400
}

/**
 * The status given to a domain error class (or a base class), for spec generators that have the
 * class rather than an instance; `undefined` when it has none (it answers 400).
 *
 * @since 0.1.0
 */
export const statusOfClass = (cls: unknown): number | undefined => {
  if (typeof cls !== "function") return undefined
  for (let c: unknown = cls; typeof c === "function" && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    const status = statuses.get(c as ErrorClass)
    if (status !== undefined) return status
  }
  return undefined
}
