/**
 * The message envelope on the wire: minos's BrokerMessage v1 field names, as JSON.
 *
 * ```json
 * { "version": 1, "topic": "CreateExam", "identifier": "<uuid>", "reply_topic": "ExamReply",
 *   "strategy": "unicast", "payload": { "content": {...}, "status": 200, "headers": {} } }
 * ```
 *
 * Statuses: 200 success, 400 domain error, 500 system error; any other number reads as 600
 * (unknown), as in minos. A reply reuses the request's `identifier`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { isValidTopic } from "./Broker.ts"

/**
 * @category models
 * @since 0.1.0
 */
export const Status = {
  Success: 200,
  Error: 400,
  SystemError: 500,
  Unknown: 600
} as const
export type Status = 200 | 400 | 500 | 600


/**
 * @category models
 * @since 0.1.0
 */
export const Envelope = Schema.Struct({
  version: Schema.Literal(1),
  topic: Schema.String.check(Schema.isMinLength(1)),
  identifier: Schema.String.check(Schema.isUUID()),
  // a reply that could never be published would block the outbox: such a request is a bad envelope
  reply_topic: Schema.NullOr(Schema.String.check(Schema.makeFilter((t: string) => isValidTopic(t), { expected: "a topic name of 1-249 of [A-Za-z0-9._-]" }))),
  strategy: Schema.Literals(["unicast", "multicast"]),
  payload: Schema.Struct({
    content: Schema.Unknown,
    status: Schema.Int,
    headers: Schema.Record(Schema.String, Schema.String)
  })
})

/**
 * @category models
 * @since 0.1.0
 */
export interface Envelope extends Schema.Schema.Type<typeof Envelope> {}

const decodeEnvelope = Schema.decodeUnknownExit(Schema.fromJsonString(Envelope))

/**
 * Reads an envelope from its JSON text; a status outside 200/400/500 becomes 600.
 *
 * @since 0.1.0
 */
export const decode = (text: string) => decodeEnvelope(text)

/** @since 0.1.0 */
export const normalizeStatus = (status: number): Status =>
  status === 200 || status === 400 || status === 500 ? status : 600

/** @since 0.1.0 */
export const encode = (envelope: Envelope): string => JSON.stringify(envelope)

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: {
  readonly topic: string
  readonly identifier: string
  readonly content: unknown
  readonly replyTopic?: string | null | undefined
  readonly status?: Status | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly strategy?: "unicast" | "multicast" | undefined
}): Envelope => ({
  version: 1,
  topic: options.topic,
  identifier: options.identifier,
  reply_topic: options.replyTopic ?? null,
  strategy: options.strategy ?? "unicast",
  payload: { content: options.content, status: options.status ?? 200, headers: { ...options.headers } }
})
