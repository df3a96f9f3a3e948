/**
 * Request/reply over the broker: send a command or query and wait for ITS reply. The reply is
 * matched by the message identifier (minos trusted "the next message on a private topic"), it comes
 * back on the service's `{Name}Reply` topic, and each instance reads that topic in an ephemeral group
 * of its own (no offsets, removed when the instance stops), so whichever instance sent the request
 * receives the reply.
 *
 * @since 0.1.0
 */
import { Context, Deferred, Duration, Effect, Layer, Schema } from "effect"
import * as PortError from "../errors/PortError.ts"
import { Broker } from "../broker/Broker.ts"
import * as Message from "../broker/Message.ts"
import { replyTopic } from "../broker/Naming.ts"
import { Replies } from "./Replies.ts"
import * as Contract from "../router/Contract.ts"

/**
 * A reply: status 200 (success), 400 (domain error), 500 (system error) or 600 (unknown).
 *
 * @category models
 * @since 0.1.0
 */
export interface Reply {
  readonly status: Message.Status
  readonly content: unknown
  readonly headers: Readonly<Record<string, string>>
  readonly identifier: string
}

/**
 * @category errors
 * @since 0.1.0
 */
export class RequestError extends Schema.TaggedError<RequestError>()("RequestError", {
  reason: Schema.Literals(["Timeout", "Unavailable", "InvalidInput", "Failed", "InvalidReply"]),
  topic: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  get [PortError.TypeId](): PortError.TypeId {
    return PortError.TypeId
  }
  get isRetryable(): boolean {
    return this.reason === "Timeout" || this.reason === "Unavailable"
  }
}

/**
 * @category models
 * @since 0.1.0
 */
export interface SendOptions {
  /** How long to wait for the reply (default 30 s). */
  readonly timeout?: Duration.Input
  readonly headers?: Readonly<Record<string, string>>
  /** Kafka key (partition); default: the identifier. */
  readonly key?: string
  /** Use this identifier instead of a fresh one (idempotent re-sends). */
  readonly identifier?: string
}

/**
 * @category services
 * @since 0.1.0
 */
export interface RequestClientShape {
  readonly send: (topic: string, content: unknown, options?: SendOptions) => Effect.Effect<Reply, RequestError>
  /**
   * Sends a command or query of a {@link Contract.Contract} and decodes its reply: the success value,
   * or one of the contract's errors (a 400 reply). A 400 outside the contract or a 500 fails with
   * `RequestError` `Failed`, a reply that does not match the contract with `InvalidReply`.
   */
  readonly call: <P, A, E>(contract: Contract.Contract<P, A, E>, payload: P, options?: SendOptions) => Effect.Effect<A, E | RequestError>
}

/**
 * @category services
 * @since 0.1.0
 */
export class RequestClient extends Context.Service<RequestClient, RequestClientShape>()("effect-minos/broker/RequestClient") {}

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("RequestClient.make")(function*(options: { readonly service: string; readonly instance?: string }) {
  const broker = yield* Broker
  const replies = yield* Replies
  const topic = replyTopic(options.service)
  const instance = options.instance ?? crypto.randomUUID()
  // an ephemeral group per instance: every instance sees every reply and keeps the ones it waits
  // for; the group records no offsets and goes away with the instance, so restarts leave none behind
  yield* broker.consume({
    group: `${options.service}.replies.${instance}`,
    topics: [topic],
    fromBeginning: false,
    ephemeral: true,
    handle: (records) =>
      Effect.forEach(records, (r) => {
        const decoded = Message.decode(r.value)
        return decoded._tag === "Success" ? replies.deliver(decoded.value) : Effect.void
      }, { discard: true })
  })

  const send = Effect.fn("RequestClient.send")(function*(target: string, content: unknown, sendOptions: SendOptions = {}) {
    const identifier = sendOptions.identifier ?? crypto.randomUUID()
    const envelope = Message.make({ topic: target, identifier, content, replyTopic: topic, headers: sendOptions.headers })
    const waiter = yield* replies.expect(identifier)
    const timeout = sendOptions.timeout ?? Duration.seconds(30)
    return yield* Effect.gen(function*() {
      yield* broker.publish([{ topic: target, key: sendOptions.key ?? identifier, value: Message.encode(envelope), headers: { "message-id": identifier } }]).pipe(
        Effect.mapError((e) =>
          new RequestError({ reason: e.reason === "InvalidTopic" ? "InvalidInput" : "Unavailable", topic: target, message: e.message, cause: e }))
      )
      const reply = yield* Deferred.await(waiter).pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () => Effect.fail(new RequestError({ reason: "Timeout", topic: target, message: `No reply to ${target} (${identifier}) within ${Duration.format(Duration.fromInputUnsafe(timeout))}` }))
        })
      )
      return { status: Message.normalizeStatus(reply.payload.status), content: reply.payload.content, headers: reply.payload.headers, identifier } satisfies Reply
    }).pipe(Effect.ensuring(replies.forget(identifier)))
  })

  const call = <P, A, E>(contract: Contract.Contract<P, A, E>, payload: P, callOptions?: SendOptions) =>
    Effect.gen(function*() {
      const content = yield* Schema.encodeEffect(contract.payload)(payload).pipe(
        Effect.mapError((e) => new RequestError({ reason: "InvalidInput", topic: contract.name, message: `Invalid payload for ${contract.name}: ${e.message}` }))
      )
      const reply = yield* send(contract.name, content, callOptions)
      const decoded = Contract.decodeReply(contract, reply.status, reply.content)
      switch (decoded._tag) {
        case "Success":
          return decoded.value
        case "Error":
          return yield* Effect.fail(decoded.error)
        case "Failed":
          return yield* Effect.fail(new RequestError({ reason: decoded.invalid ? "InvalidReply" : "Failed", topic: contract.name, message: decoded.message }))
      }
    }).pipe(Effect.withSpan("RequestClient.call", { attributes: { topic: contract.name } }))

  return RequestClient.of({ send, call })
})

/**
 * The client of a service (its replies come back on `{service}Reply`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: { readonly service: string }): Layer.Layer<RequestClient, import("../broker/Broker.ts").BrokerError, Broker | Replies> =>
  Layer.effect(RequestClient, make(options))
