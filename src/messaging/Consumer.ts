/**
 * The broker consumer of a service: reads every topic that has a handler (plus the service's reply
 * topic) in the consumer group named after the service, and handles each record exactly once in
 * effect:
 *
 * - The inbox claim `(topic, identifier)`, the handler's writes and the reply (staged in the outbox)
 *   commit in ONE storage transaction; a redelivered message finds its claim and does nothing.
 * - Records with the same key are handled in order; different keys in parallel (bounded).
 * - Bad envelope → dead letter at once. Bad payload (its Schema fails, or a string holds NUL or an
 *   unpaired surrogate, which no store can hold) → a 400 reply (commands, queries) or a dead
 *   letter (events). Domain error from a command → 400 reply. Outage or defect → retried with
 *   backoff; after `retry` retries → dead letter (+ `{topic}.DLQ`, + a 500 reply) and the partition
 *   moves on. If even the dead letter cannot be stored, the batch fails and the broker redelivers it.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Data, Duration, Effect, Exit, Layer, Option, Ref, Result, Schedule, Schema } from "effect"
import { Broker, type DeliveredRecord } from "../broker/Broker.ts"
import * as Message from "../broker/Message.ts"
import { deadLetterTopic, replyTopic } from "../broker/Naming.ts"
import { Replies } from "./Replies.ts"
import * as PortError from "../errors/PortError.ts"
import { escapeUnstorable, unstorableStringAt } from "../internal/Json.ts"
import { describeCause, errorBody, schemaIssues } from "../internal/Outcome.ts"
import * as Request from "../router/Request.ts"
import { type BrokerHandler, Routes, withMiddleware } from "../router/Router.ts"
import { UnitOfWork } from "../storage/UnitOfWork.ts"
import { Inbox } from "../queue/Inbox.ts"
import { Outbox } from "../queue/Outbox.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface ConsumerOptions {
  /** Consumer group; minos used the service name. */
  readonly group: string
  /** The service's reply topic (`{Name}Reply`), whose records go to `Replies`. */
  readonly replyTopic: string
  /** Retries after the first attempt before a message is dead-lettered. */
  readonly retry: number
  /** First backoff; doubles per retry. */
  readonly backoffMs: number
  /** Keys handled at once per partition batch (default 16). */
  readonly concurrency?: number
  /** Extra topics to consume (framework handlers registered elsewhere). */
  readonly topics?: ReadonlyArray<string>
}

type Outcome = Data.TaggedEnum<{
  Done: {}
  Duplicate: {}
  Reply: { readonly status: 400; readonly content: unknown; readonly headers: Readonly<Record<string, string>> }
  DeadLetter: { readonly error: string }
}>
const Outcome = Data.taggedEnum<Outcome>()

/** A failure worth another attempt. */
class Retryable extends Data.TaggedError("Retryable")<{ readonly cause: Cause.Cause<unknown> }> {}

/** The handler's answer, after its writes were rolled back. */
class RolledBack extends Data.TaggedError("RolledBack")<{ readonly outcome: Extract<Outcome, { _tag: "Reply" }> }> {}

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("Consumer.make")(function*(options: ConsumerOptions) {
  const broker = yield* Broker
  const routes = yield* Routes
  const inbox = yield* Inbox
  const outbox = yield* Outbox
  const uow = yield* UnitOfWork
  const replies = yield* Replies
  const concurrency = options.concurrency ?? 16

  const stageReply = (request: Message.Envelope, key: string | null, status: Message.Status, content: unknown, headers: Readonly<Record<string, string>>) =>
    request.reply_topic === null
      ? Effect.void
      : outbox.stage([{
        topic: request.reply_topic,
        // a key from outside may hold a NUL, which no store can: it only picks the reply's partition
        key: key === null ? null : escapeUnstorable(key),
        value: Message.encode(Message.make({ topic: request.reply_topic, identifier: request.identifier, content, status, headers })),
        headers: { "message-id": request.identifier }
      }])

  /**
   * Inside the caller's storage transaction: claim the message, run the handler, stage a success
   * reply. `Duplicate` when the claim exists; the handler's failure is returned as its exit.
   */
  const claimAndRun = (record: DeliveredRecord, envelope: Message.Envelope, handler: BrokerHandler<any, any, any, Request.Request>, claimId: string, payload: unknown, now: number) =>
    Effect.gen(function*() {
      if (!(yield* inbox.claim(options.group, record.topic, claimId, now))) return "Duplicate" as const
      const request = yield* Request.make({ kind: handler.kind, route: handler.topic, identifier: envelope.identifier, headers: envelope.payload.headers })
      const result = yield* Effect.exit(withMiddleware(routes.middleware, request, handler.handle(payload)))
      if (Exit.isSuccess(result) && handler.kind !== "event" && envelope.reply_topic !== null) {
        const content = handler.success === undefined ? (result.value ?? null) : Schema.encodeSync(handler.success)(result.value)
        yield* stageReply(envelope, record.key, 200, content, yield* request.replyHeaders)
      }
      return { result, replyHeaders: request.replyHeaders }
    })

  /** One attempt: claim + handler + reply in one storage transaction. */
  const attempt = (record: DeliveredRecord, envelope: Message.Envelope, handler: BrokerHandler<any, any, any, Request.Request>, claimId: string) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const bad = unstorableStringAt(envelope.payload.content)
      const decoded = bad === undefined ? Schema.decodeUnknownExit(handler.payload)(envelope.payload.content, { errors: "all" }) : undefined
      if (decoded === undefined || Exit.isFailure(decoded)) {
        const error = decoded === undefined ? Option.none() : Cause.findErrorOption(decoded.cause)
        // no store can hold a NUL or an unpaired surrogate: bad input, the same on every backend
        const issues = bad !== undefined
          ? [{ path: bad, message: "Strings may not contain NUL (\\u0000) or unpaired surrogates" }]
          : Option.isSome(error) && Schema.isSchemaError(error.value) ? schemaIssues(error.value) : []
        const message = `Invalid payload for ${handler.topic}: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")}`
        return handler.kind === "event"
          ? Outcome.DeadLetter({ error: message })
          : Outcome.Reply({ status: 400, content: { _tag: "InvalidPayload", message, issues }, headers: envelope.payload.headers })
      }
      return yield* uow.transaction(Effect.gen(function*() {
        const ran = yield* claimAndRun(record, envelope, handler, claimId, decoded.value, now)
        if (ran === "Duplicate") return Outcome.Duplicate()
        const { replyHeaders, result } = ran
        if (Exit.isSuccess(result)) return Outcome.Done()
        const error = Cause.findErrorOption(result.cause)
        if (handler.kind !== "event" && Option.isSome(error) && !Cause.hasDies(result.cause) && PortError.isAnswer(error.value)) {
          // a domain error is an answer, not a failure: roll the handler back, reply 400
          return yield* new RolledBack({ outcome: Outcome.Reply({ status: 400, content: errorBody(error.value), headers: yield* replyHeaders }) })
        }
        return yield* new Retryable({ cause: result.cause })
      }))
    }).pipe(
      Effect.catch((e: unknown) =>
        e instanceof RolledBack ? Effect.succeed<Outcome>(e.outcome) : Effect.fail(e instanceof Retryable ? e : new Retryable({ cause: Cause.fail(e) }))
      ),
      Effect.catchDefect((d) => Effect.fail(new Retryable({ cause: Cause.die(d) })))
    )

  /** The 400 reply after a rolled-back domain error, claimed so a redelivery does not run the handler. */
  const answer = (record: DeliveredRecord, envelope: Message.Envelope, claimId: string, outcome: Extract<Outcome, { _tag: "Reply" }>) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      yield* uow.transaction(Effect.gen(function*() {
        if (!(yield* inbox.claim(options.group, record.topic, claimId, now))) return
        yield* stageReply(envelope, record.key, outcome.status, outcome.content, outcome.headers)
      }))
    })

  const deadLetter = (delivered: DeliveredRecord, envelope: Message.Envelope | undefined, claimId: string | undefined, error: string, attempts: number, firstFailedAt: number) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      // a poison record's bytes may hold what no store can (NUL): kept escaped, or the partition would stop here
      const record = storableRecord(delivered)
      yield* uow.transaction(Effect.gen(function*() {
        if (claimId !== undefined && !(yield* inbox.claim(options.group, record.topic, claimId, now))) return
        yield* inbox.deadLetter({
          group: options.group,
          topic: record.topic,
          key: record.key,
          value: record.value,
          headers: record.headers,
          identifier: claimId ?? null,
          error,
          attempts,
          firstFailedAt,
          lastFailedAt: now
        })
        yield* outbox.stage([{ topic: deadLetterTopic(record.topic), key: record.key, value: record.value, headers: { ...record.headers, "x-error": error.slice(0, 1000), "x-consumer-group": options.group } }])
        if (envelope !== undefined) yield* stageReply(envelope, record.key, 500, { _tag: "SystemError", message: "The message could not be handled; it was dead-lettered" }, envelope.payload.headers)
      }))
      yield* Effect.logWarning(`dead-lettered ${record.topic} (${envelope?.identifier ?? "no identifier"}) after ${attempts} attempt(s): ${error}`)
    })

  const storableRecord = (record: DeliveredRecord): DeliveredRecord => {
    const value = escapeUnstorable(record.value)
    const key = record.key === null ? null : escapeUnstorable(record.key)
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(record.headers)) headers[escapeUnstorable(k)] = escapeUnstorable(v)
    if (value !== record.value) headers["x-value-escaped"] = "true"
    return { ...record, value, key, headers }
  }

  const retries = Schedule.exponential(Duration.millis(options.backoffMs)).pipe(Schedule.upTo({ times: options.retry }))

  const handleWith = (record: DeliveredRecord, envelope: Message.Envelope, handler: BrokerHandler<any, any, any, Request.Request>, claimId: string) =>
    Effect.gen(function*() {
      const firstFailedAt = yield* Clock.currentTimeMillis
      const attempts = yield* Ref.make(0)
      const once = Effect.gen(function*() {
        const n = yield* Ref.updateAndGet(attempts, (x) => x + 1)
        return yield* attempt(record, envelope, handler, claimId).pipe(
          Effect.tapError((failure) =>
            Cause.hasDies(failure.cause)
              ? Effect.logError(`handler ${handler.topic} died (attempt ${n})`, failure.cause)
              : Effect.logWarning(`handling ${handler.topic} failed (attempt ${n}): ${describeCause(failure.cause)}`)
          )
        )
      })
      const outcome = yield* Effect.retry(once, retries).pipe(Effect.result)
      const tries = yield* Ref.get(attempts)
      if (Result.isFailure(outcome)) return yield* deadLetter(record, envelope, claimId, describeCause(outcome.failure.cause), tries, firstFailedAt)
      return yield* Outcome.$match(outcome.success, {
        Reply: (reply) => answer(record, envelope, claimId, reply),
        DeadLetter: ({ error }) => deadLetter(record, envelope, claimId, error, tries, firstFailedAt),
        Done: () => Effect.void,
        Duplicate: () => Effect.void
      })
    })

  const handleRecord = (record: DeliveredRecord) =>
    Effect.gen(function*() {
      const decoded = Message.decode(record.value)
      if (decoded._tag === "Failure") {
        const firstFailedAt = yield* Clock.currentTimeMillis
        return yield* deadLetter(record, undefined, undefined, `Undecodable message: ${describeCause(decoded.cause)}`, 1, firstFailedAt)
      }
      const envelope = decoded.value
      if (record.topic === options.replyTopic) {
        // replies this instance waits for are delivered by its RequestClient; the rest go to listeners (sagas)
        if (!(yield* replies.deliver(envelope))) yield* replies.dispatch(envelope)
        return
      }
      const command = routes.commands.get(record.topic)
      if (command !== undefined) return yield* handleWith(record, envelope, command, envelope.identifier)
      const events = routes.events.get(record.topic) ?? []
      // several handlers of one event claim separately, so a failing one does not re-run the others
      yield* Effect.forEach(events, (h, i) => handleWith(record, envelope, h, events.length === 1 ? envelope.identifier : `${envelope.identifier}#${i}`), { discard: true })
    }).pipe(Effect.withSpan("Consumer.handle", { attributes: { topic: record.topic } }))

  /** Same key → in order; different keys → in parallel. */
  /**
   * The fast path: a whole delivered batch (one partition, in order) in ONE storage transaction, so
   * claims, handlers' writes and replies share one commit. Anything but plain success — an
   * undecodable record, a bad payload, a failing handler — aborts it, and the batch is handled again
   * record by record with the full rules above (its storage effects were rolled back; effects outside
   * the storage may happen twice, as with any redelivery).
   */
  const Fallback = Symbol("Fallback")
  const batched = (records: ReadonlyArray<DeliveredRecord>) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      yield* uow.transaction(Effect.forEach(records, (record) =>
        Effect.gen(function*() {
          const decoded = Message.decode(record.value)
          if (decoded._tag === "Failure") return yield* Effect.fail(Fallback)
          const envelope = decoded.value
          const command = routes.commands.get(record.topic)
          const handlers = command !== undefined ? [command] : routes.events.get(record.topic) ?? []
          for (const [i, handler] of handlers.entries()) {
            if (unstorableStringAt(envelope.payload.content) !== undefined) return yield* Effect.fail(Fallback)
            const payload = Schema.decodeUnknownExit(handler.payload)(envelope.payload.content)
            if (Exit.isFailure(payload)) return yield* Effect.fail(Fallback)
            const claimId = command !== undefined || handlers.length === 1 ? envelope.identifier : `${envelope.identifier}#${i}`
            const ran = yield* claimAndRun(record, envelope, handler, claimId, payload.value, now)
            if (ran !== "Duplicate" && Exit.isFailure(ran.result)) return yield* Effect.fail(Fallback)
          }
        }), { discard: true }))
    }).pipe(Effect.withSpan("Consumer.batch", { attributes: { size: records.length } }))

  const oneByOne = (records: ReadonlyArray<DeliveredRecord>) => {
    const byKey = new Map<string, Array<DeliveredRecord>>()
    let anonymous = 0
    for (const r of records) {
      const k = r.key ?? `\u0000${anonymous++}`
      const list = byKey.get(k)
      if (list === undefined) byKey.set(k, [r])
      else list.push(r)
    }
    return Effect.forEach(byKey.values(), (list) => Effect.forEach(list, handleRecord, { discard: true }), { concurrency, discard: true })
  }

  const handleBatch = (records: ReadonlyArray<DeliveredRecord>) =>
    records.length < 2 || records[0]!.topic === options.replyTopic
      // replies resume sagas outside the storage transaction: never batched
      ? oneByOne(records)
      : batched(records).pipe(Effect.catchCause((cause) => (Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : oneByOne(records))))

  const topics = [...new Set([...routes.topics, ...(options.topics ?? []), options.replyTopic])]
  yield* broker.consume({ group: options.group, topics, handle: handleBatch })
  yield* Effect.logInfo(`consuming ${topics.length} topic(s) in group ${options.group}`)
})

/**
 * The consumer of a service, as a scoped background part: group = the service name, replies on
 * `{Name}Reply`.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: {
  readonly service: string
  readonly retry: number
  readonly backoffMs: number
  readonly concurrency?: number
  readonly topics?: ReadonlyArray<string>
}) =>
  Layer.effectDiscard(make({
    group: options.service,
    replyTopic: replyTopic(options.service),
    retry: options.retry,
    backoffMs: options.backoffMs,
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(options.topics === undefined ? {} : { topics: options.topics })
  }))
