/**
 * The AsyncAPI description of a service, generated from the Schemas of its handlers and served by
 * `HttpServer` at `GET /spec/asyncapi` (AsyncAPI 3.0: the broker commands, queries and events it
 * receives, the domain events and commands it sends). The OpenAPI document comes from `Api`.
 *
 * JSON Schemas come from `Schema.toJsonSchemaDocument` (the JSON-encoded side of each Schema). A
 * Schema that cannot be converted is described as `{}` (anything) instead of failing the document.
 *
 * @since 0.1.0
 */
import { JsonSchema, Schema } from "effect"
import * as Naming from "../broker/Naming.ts"
import * as Aggregate from "../domain/Aggregate.ts"
import type { BrokerHandler, RoutesShape } from "../router/Router.ts"

/**
 * @category models
 * @since 0.1.0
 */
export type Json = { readonly [key: string]: unknown }

/**
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** `info.title`: the service's name. */
  readonly title: string
  /** `info.version` (default `"0.1.0"`). */
  readonly version?: string | undefined
}

/**
 * Turns Schemas into JSON Schemas whose definitions are collected in one pool (the document's
 * `components.schemas`), with `$ref`s pointing there.
 */
class SchemaPool {
  readonly definitions: Record<string, unknown> = {}

  toJsonSchema(schema: Schema.Top | undefined): Json {
    if (schema === undefined) return {}
    try {
      const document = Schema.toJsonSchemaDocument(schema)
      const openApi = JsonSchema.toMultiDocumentOpenApi3_1({
        dialect: "draft-2020-12",
        schemas: [document.schema],
        definitions: document.definitions
      })
      for (const [name, definition] of Object.entries(openApi.definitions)) {
        // Two schemas with one identifier: the first one wins, as identifiers are meant to be unique.
        if (!(name in this.definitions)) this.definitions[name] = definition
      }
      return openApi.schemas[0]
    } catch {
      return {}
    }
  }

}

/** The minos wire envelope around a message's content (see `broker/Message.ts`). */
const envelope = (content: Json, statuses: ReadonlyArray<number>): Json => ({
  type: "object",
  properties: {
    version: { const: 1 },
    topic: { type: "string" },
    identifier: { type: "string", format: "uuid" },
    reply_topic: { type: ["string", "null"] },
    strategy: { type: "string", enum: ["unicast", "multicast"] },
    payload: {
      type: "object",
      properties: {
        content,
        status: { type: "integer", enum: statuses },
        headers: { type: "object", additionalProperties: { type: "string" } }
      },
      required: ["content", "status", "headers"]
    }
  },
  required: ["version", "topic", "identifier", "reply_topic", "strategy", "payload"]
})

/** The reply body of a failed command or query (400 domain error, 500/600 failure). */
const replyError: Json = {
  type: "object",
  properties: { error: { type: "string" }, message: { type: "string" } },
  required: ["error"],
  additionalProperties: true
}

/** A reply's content: the success Schema on 200, an error body otherwise. */
const replyContent = (pool: SchemaPool, success: Schema.Top | undefined, error: Schema.Top | undefined): Json => ({
  oneOf: [
    { ...(success === undefined ? {} : pool.toJsonSchema(success)), description: "status 200: the result" },
    { ...(error === undefined ? replyError : pool.toJsonSchema(error)), description: "status 400: a domain error; 500/600: a failure" }
  ]
})

/**
 * The AsyncAPI 3.0 document of the service's messaging:
 *
 * - **receive** one operation per command, query and event topic it handles; commands and queries
 *   answer on the request's `reply_topic` (the operation's `reply`);
 * - **send** one operation per topic its aggregates publish domain events on (`{Aggregate}Created`,
 *   `{Aggregate}Updated`, `{Aggregate}Updated.{field}`, …: `Aggregate.published`), and one per command
 *   or query it sends to other services, whose replies come back on `{Service}Reply`.
 *
 * Message payloads are the minos wire envelope (`broker/Message.ts`) around the content's JSON Schema.
 *
 * @category constructors
 * @since 0.1.0
 */
export const asyncApi = (routes: RoutesShape, options: Options): Json => {
  const pool = new SchemaPool()
  const channels: Record<string, { address: string | null; messages: Record<string, Json>; description?: string }> = {}
  const operations: Record<string, Json> = {}
  const messages: Record<string, Json> = {}
  const channel = (id: string, address: string | null) => (channels[id] ??= { address, messages: {} })
  const message = (channelId: string, key: string, id: string, body: Json) => {
    messages[id] = body
    channel(channelId, channelId).messages[key] = { $ref: `#/components/messages/${id}` }
    return { $ref: `#/channels/${channelId}/messages/${key}` }
  }
  const replyChannel = (id: string, address: string | null, key: string, messageId: string, body: Json) => {
    messages[messageId] = body
    const c = channel(id, address)
    c.messages[key] = { $ref: `#/components/messages/${messageId}` }
    return { $ref: `#/channels/${id}/messages/${key}` }
  }

  const receive = (topic: string, h: BrokerHandler) => {
    const ref = message(topic, "received", `${topic}.received`, {
      name: topic,
      title: `${topic} (${h.kind}, received)`,
      contentType: "application/json",
      payload: envelope(pool.toJsonSchema(h.payload), [200])
    })
    const operation: Record<string, unknown> = {
      action: "receive",
      summary: `Handles the ${h.kind} ${topic}`,
      channel: { $ref: `#/channels/${topic}` },
      messages: [ref],
      "x-kind": h.kind
    }
    if (h.kind !== "event") {
      const replyId = `${topic}.reply`
      const replyRef = replyChannel(replyId, null, "reply", replyId, {
        name: `${topic}Reply`,
        title: `Reply to ${topic}`,
        contentType: "application/json",
        payload: envelope(replyContent(pool, h.success, h.error), [200, 400, 500, 600])
      })
      channels[replyId]!.description = "The requester's reply topic, from the request's reply_topic"
      operation["reply"] = {
        address: { location: "$message.payload#/reply_topic" },
        channel: { $ref: `#/channels/${replyId}` },
        messages: [replyRef]
      }
    }
    operations[`receive.${topic}`] = operation
  }
  for (const [topic, h] of routes.commands) receive(topic, h)
  for (const [topic, hs] of routes.events) {
    const first = hs[0]
    if (first !== undefined) receive(topic, first)
  }

  for (const p of routes.published) {
    const ref = message(p.topic, "published", `${p.topic}.published`, {
      name: p.topic,
      title: `${p.topic} (domain event of ${p.aggregate})`,
      ...(p.description === undefined ? {} : { summary: p.description }),
      contentType: "application/json",
      payload: envelope(pool.toJsonSchema(Aggregate.DomainEventEnvelope(p.data)), [200])
    })
    operations[`send.${p.topic}`] = {
      action: "send",
      summary: `Publishes ${p.topic} (multicast, keyed by the ${p.aggregate} id)`,
      channel: { $ref: `#/channels/${p.topic}` },
      messages: [ref],
      "x-kind": "event"
    }
  }

  const replies = Naming.replyTopic(options.title)
  for (const s of routes.sends) {
    const ref = message(s.name, "sent", `${s.name}.sent`, {
      name: s.name,
      title: `${s.name} (${s.kind}, sent)`,
      contentType: "application/json",
      payload: envelope(pool.toJsonSchema(s.payload), [200])
    })
    const replyRef = replyChannel(replies, replies, `${s.name}.reply`, `${s.name}.reply.received`, {
      name: `${s.name}Reply`,
      title: `Reply to ${s.name}`,
      contentType: "application/json",
      payload: envelope(replyContent(pool, s.success, s.error), [200, 400, 500, 600])
    })
    operations[`send.${s.name}`] = {
      action: "send",
      summary: `Sends the ${s.kind} ${s.name}; the reply comes back on ${replies}`,
      channel: { $ref: `#/channels/${s.name}` },
      messages: [ref],
      reply: { channel: { $ref: `#/channels/${replies}` }, messages: [replyRef] },
      "x-kind": s.kind
    }
  }

  return {
    asyncapi: "3.0.0",
    info: { title: options.title, version: options.version ?? "0.1.0" },
    defaultContentType: "application/json",
    channels,
    operations,
    components: { schemas: pool.definitions, messages }
  }
}
