/**
 * The request being handled, available to every handler and middleware as a service: what kind of
 * route it came through, its identifier, user and headers. Headers set with `setHeader` travel back
 * in the broker reply (as minos's headers context variable did).
 *
 * @since 0.1.0
 */
import { Context, Effect, Ref } from "effect"

/**
 * @category models
 * @since 0.1.0
 */
export type Kind = "command" | "query" | "event" | "rest" | "periodic" | "graphql"

/**
 * @category services
 * @since 0.1.0
 */
export interface RequestShape {
  readonly kind: Kind
  /** Broker topic, `METHOD /path` pattern, or periodic job name. */
  readonly route: string
  /** The message identifier (broker), a fresh UUID (REST), or the run's id (periodic). */
  readonly identifier: string
  /** The `user` header, when the caller sent one. */
  readonly user: string | undefined
  /** The request's headers as received. */
  readonly headers: Readonly<Record<string, string>>
  /** Sets a header of the reply. */
  readonly setHeader: (name: string, value: string) => Effect.Effect<void>
  /** The headers the reply will carry: the request's, plus what handlers and middleware set. */
  readonly replyHeaders: Effect.Effect<Readonly<Record<string, string>>>
}

/**
 * @category services
 * @since 0.1.0
 */
export class Request extends Context.Service<Request, RequestShape>()("effect-minos/router/Request") {}

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: {
  readonly kind: Kind
  readonly route: string
  readonly identifier: string
  readonly headers: Readonly<Record<string, string>>
}): Effect.Effect<RequestShape> =>
  Effect.map(Ref.make<Record<string, string>>({ ...options.headers }), (reply) => ({
    kind: options.kind,
    route: options.route,
    identifier: options.identifier,
    user: options.headers["user"],
    headers: options.headers,
    setHeader: (name, value) => Ref.update(reply, (h) => ({ ...h, [name]: value })),
    replyHeaders: Ref.get(reply)
  }))
