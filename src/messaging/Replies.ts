/**
 * Where replies go: a reply carries the request's `identifier`, and whoever waits for that
 * identifier (a `RequestClient` call in this process) gets it. Replies nobody waits for here are
 * offered to the registered listeners (the saga manager resumes executions by their `saga` header)
 * and otherwise dropped: they belong to another instance or to a request that timed out.
 *
 * @since 0.1.0
 */
import { Context, Deferred, Effect, Layer, Ref } from "effect"
import type { Envelope } from "../broker/Message.ts"

/**
 * @category services
 * @since 0.1.0
 */
export interface RepliesShape {
  /** Starts waiting for the reply to `identifier`; call before sending the request. */
  readonly expect: (identifier: string) => Effect.Effect<Deferred.Deferred<Envelope>>
  /** Stops waiting (timeout, interruption). */
  readonly forget: (identifier: string) => Effect.Effect<void>
  /** Hands a reply to its waiter; true when someone in this process was waiting. */
  readonly deliver: (reply: Envelope) => Effect.Effect<boolean>
  /** Adds a listener for replies that no waiter claimed (used by the saga manager). */
  readonly listen: (listener: (reply: Envelope) => Effect.Effect<void, unknown>) => Effect.Effect<void>
  /** Runs the listeners for a reply; their failures propagate so the consumer can retry. */
  readonly dispatch: (reply: Envelope) => Effect.Effect<void, unknown>
}

/**
 * @category services
 * @since 0.1.0
 */
export class Replies extends Context.Service<Replies, RepliesShape>()("effect-minos/broker/Replies") {}

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.gen(function*() {
  const waiting = new Map<string, Deferred.Deferred<Envelope>>()
  const listeners = yield* Ref.make<ReadonlyArray<(reply: Envelope) => Effect.Effect<void, unknown>>>([])
  return Replies.of({
    expect: (identifier) =>
      Effect.gen(function*() {
        const d = yield* Deferred.make<Envelope>()
        waiting.set(identifier, d)
        return d
      }),
    forget: (identifier) => Effect.sync(() => void waiting.delete(identifier)),
    deliver: (reply) =>
      Effect.gen(function*() {
        const d = waiting.get(reply.identifier)
        if (d === undefined) return false
        waiting.delete(reply.identifier)
        yield* Deferred.succeed(d, reply)
        return true
      }),
    listen: (listener) => Ref.update(listeners, (ls) => [...ls, listener]),
    dispatch: (reply) => Effect.flatMap(Ref.get(listeners), (ls) => Effect.forEach(ls, (l) => l(reply), { discard: true }))
  })
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<Replies> = Layer.effect(Replies, make)
