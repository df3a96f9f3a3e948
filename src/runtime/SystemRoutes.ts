/**
 * Built-in REST routes of every service: the dead letters, listed and replayed over HTTP.
 *
 *   GET  /system/dead-letters?topic=&limit=     the dead letters
 *   POST /system/dead-letters/:id/replay        replay one
 *   POST /system/dead-letters/replay?topic=     replay all (of a topic)
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import * as DeadLetters from "../messaging/DeadLetters.ts"
import { InboxError } from "../queue/Inbox.ts"
import * as Router from "../router/Router.ts"

const Limit = Schema.optional(Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 10_000 })))

/** @since 0.1.0 */
export const handlers = [
  Router.rest("GET", "/system/dead-letters", {
    query: Schema.Struct({ topic: Schema.optional(Schema.String), limit: Limit }),
    summary: "List the dead letters"
  }, ({ query }) => Effect.map(DeadLetters.list({ topic: query.topic, limit: query.limit }), (items) => ({ items }))),
  Router.rest("POST", "/system/dead-letters/:id/replay", {
    params: Schema.Struct({ id: Schema.FiniteFromString.check(Schema.isInt()) }),
    summary: "Replay one dead letter"
  }, ({ params }) =>
    DeadLetters.replay(params.id).pipe(
      Effect.map((letter) => ({ replayed: letter.id, topic: letter.topic })),
      // a missing dead letter is the caller's 404, not an outage
      Effect.catchIf((e): e is InboxError => e instanceof InboxError && e.reason === "NotFound", (e) =>
        Effect.fail(new DeadLetterNotFound({ message: e.message })))
    )),
  Router.rest("POST", "/system/dead-letters/replay", {
    query: Schema.Struct({ topic: Schema.optional(Schema.String) }),
    summary: "Replay all dead letters (of a topic)"
  }, ({ query }) => Effect.map(DeadLetters.replayAll({ topic: query.topic }), (replayed) => ({ replayed })))
] as const

/**
 * @category errors
 * @since 0.1.0
 */
export class DeadLetterNotFound extends Schema.TaggedError<DeadLetterNotFound>()("DeadLetterNotFound", { message: Schema.String }) {
  get httpStatus(): number {
    return 404
  }
}
