/**
 * The `Broker` port on Apache Kafka, through kafkajs.
 *
 * - Publishing waits for all in-sync replicas (`acks: -1`); topics are created on first use.
 * - Consuming: one kafkajs consumer per `consume` call, in the given group. Each partition's records
 *   go to `handle` in order; the group offset is committed explicitly after `handle` succeeded, never
 *   before, so a member that dies mid-batch leaves the records to the next one. A failed `handle` is
 *   retried by kafkajs (fetch again from the last committed record, with backoff).
 * - Closing the `consume` scope interrupts the handlers in flight before disconnecting (kafkajs waits
 *   for the batch in flight on disconnect, which a stuck handler would make forever).
 * - `fromBeginning: false` pins the end of the partitions the group has no offset for when `consume`
 *   is called (and commits it as the group's offset), so records published after `consume` returned
 *   are delivered; kafkajs' own "latest" is resolved later, at the first fetch.
 *
 * @since 0.1.0
 */
import { Context, Effect, FiberSet, Layer, Scope } from "effect"
import { type Admin, type Consumer, Kafka, type KafkaMessage, logLevel, type LogEntry, Partitioners, type Producer } from "kafkajs"
import { Broker, BrokerError, type BrokerShape, type ConsumeOptions, type DeliveredRecord, isValidTopic, type OutgoingRecord } from "../broker/Broker.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface KafkaOptions {
  readonly brokers: ReadonlyArray<string>
  readonly clientId: string
  /** Partitions of the topics this client creates (default 3). */
  readonly partitions?: number
  /** How long a request may take before it fails with a retryable `Timeout` (default 30 s). */
  readonly requestTimeoutMs?: number
}

/**
 * The kafkajs consumer settings every `consume` uses (benchmarks reuse them for the raw baseline).
 *
 * @since 0.1.0
 */
export const consumerSettings = {
  allowAutoTopicCreation: false,
  sessionTimeout: 10_000,
  rebalanceTimeout: 10_000,
  heartbeatInterval: 1_000,
  maxWaitTimeInMs: 100,
  retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 5_000 }
} as const

const retryableNames = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSNumberOfRetriesExceeded",
  "KafkaJSBrokerNotFound",
  "KafkaJSLockTimeout",
  "KafkaJSGroupCoordinatorNotFound",
  "KafkaJSNotImplemented"
])

const toBrokerError = (what: string) => (cause: unknown): BrokerError => {
  const e = cause as { name?: string; type?: string; message?: string; retriable?: boolean }
  const message = `${what}: ${e?.message ?? String(cause)}`
  if (e?.name === "KafkaJSRequestTimeoutError" || e?.type === "REQUEST_TIMED_OUT") {
    return new BrokerError({ reason: "Timeout", message, cause })
  }
  if (e?.type === "INVALID_TOPIC_EXCEPTION" || e?.type === "TOPIC_AUTHORIZATION_FAILED") {
    return new BrokerError({ reason: "InvalidTopic", message, cause })
  }
  if (e?.type === "MESSAGE_TOO_LARGE" || e?.type === "RECORD_LIST_TOO_LARGE" || e?.type === "INVALID_RECORD") {
    return new BrokerError({ reason: "Rejected", message, cause })
  }
  if (retryableNames.has(e?.name ?? "") || e?.retriable === true) return new BrokerError({ reason: "Unavailable", message, cause })
  return new BrokerError({ reason: "Unknown", message, cause })
}

const invalidTopic = (topic: string) =>
  new BrokerError({ reason: "InvalidTopic", message: `Invalid topic name ${JSON.stringify(topic)}: use 1-249 of [A-Za-z0-9._-]` })

const headersOf = (message: KafkaMessage): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(message.headers ?? {})) {
    if (v === undefined) continue
    out[k] = Array.isArray(v) ? String(v[v.length - 1] ?? "") : Buffer.isBuffer(v) ? v.toString("utf8") : String(v)
  }
  return out
}

/**
 * The raw kafkajs client, for code (benchmarks, tests) that needs to go around the port.
 *
 * @category services
 * @since 0.1.0
 */
export class KafkaClient extends Context.Service<KafkaClient, { readonly kafka: Kafka; readonly options: KafkaOptions }>()(
  "effect-minos/broker/KafkaClient"
) {}

/**
 * Builds the port on a connected producer and admin client; both are closed with the scope.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("KafkaBroker.make")(function*(options: KafkaOptions) {
  const context = yield* Effect.context<never>()
  const runFork = Effect.runForkWith(context)
  // kafkajs passes the configured level to the creator; each entry carries its own
  const forward = (entry: LogEntry) => {
    const text = `kafkajs ${entry.namespace}: ${entry.log.message}`
    runFork(entry.level <= logLevel.ERROR ? Effect.logError(text) : Effect.logWarning(text))
  }
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    logLevel: logLevel.WARN,
    logCreator: () => forward,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    connectionTimeout: 3_000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 }
  })
  const partitions = options.partitions ?? 3

  const admin: Admin = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const a = kafka.admin()
        await a.connect()
        return a
      },
      catch: toBrokerError("Kafka admin connect")
    }),
    (a) => Effect.promise(() => a.disconnect().catch(() => undefined))
  )
  const producer: Producer = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const p = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner })
        await p.connect()
        return p
      },
      catch: toBrokerError("Kafka producer connect")
    }),
    (p) => Effect.promise(() => p.disconnect().catch(() => undefined))
  )

  const known = new Set<string>()
  const ensureTopics = Effect.fn("KafkaBroker.ensureTopics")(function*(topics: ReadonlyArray<string>) {
    const missing = [...new Set(topics)].filter((t) => !known.has(t))
    if (missing.length === 0) return
    const bad = missing.find((t) => !isValidTopic(t))
    if (bad !== undefined) return yield* Effect.fail(invalidTopic(bad))
    yield* Effect.tryPromise({
      try: async () => {
        const existing = new Set(await admin.listTopics())
        const create = missing.filter((t) => !existing.has(t))
        if (create.length > 0) {
          try {
            await admin.createTopics({
              waitForLeaders: true,
              topics: create.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: -1 }))
            })
          } catch (e) {
            // another process created it between our list and create
            if ((e as { type?: string }).type !== "TOPIC_ALREADY_EXISTS") {
              const nested = (e as { errors?: ReadonlyArray<{ type?: string }> }).errors
              if (!nested || nested.some((n) => n.type !== "TOPIC_ALREADY_EXISTS")) throw e
            }
          }
        }
      },
      catch: toBrokerError("Kafka create topics")
    })
    for (const t of missing) known.add(t)
  })

  const publish = Effect.fn("KafkaBroker.publish")(function*(records: ReadonlyArray<OutgoingRecord>) {
    if (records.length === 0) return
    yield* ensureTopics(records.map((r) => r.topic))
    const byTopic = new Map<string, Array<{ key: string | null; value: string; headers: Record<string, string> }>>()
    for (const r of records) {
      let list = byTopic.get(r.topic)
      if (list === undefined) byTopic.set(r.topic, (list = []))
      list.push({ key: r.key, value: r.value, headers: { ...r.headers } })
    }
    yield* Effect.tryPromise({
      try: () => producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) }),
      catch: toBrokerError("Kafka publish")
    })
  })

  /**
   * Where a group without a committed offset starts when `fromBeginning` is false: the end of each
   * partition as of now, for the partitions the group has no offset for. kafkajs' own "latest" is
   * resolved at the consumer's first fetch, after `consume` returned, so records published right after
   * `consume` returned could be skipped; pinning the end before joining closes that window.
   */
  const endsOfUncommitted = (group: string, topics: ReadonlyArray<string>) =>
    Effect.tryPromise({
      try: async () => {
        const committed = await admin.fetchOffsets({ groupId: group, topics: [...topics] })
        const ends = new Map<string, bigint>()
        for (const { topic, partitions: committedPartitions } of committed) {
          const uncommitted = new Set(committedPartitions.filter((p) => BigInt(p.offset) < 0n).map((p) => p.partition))
          if (uncommitted.size === 0) continue
          for (const { partition, high } of await admin.fetchTopicOffsets(topic)) {
            if (uncommitted.has(partition)) ends.set(`${topic}/${partition}`, BigInt(high))
          }
        }
        return ends
      },
      catch: toBrokerError(`Kafka fetch offsets (group ${group})`)
    })

  const consume = Effect.fn("KafkaBroker.consume")(function*(consumeOptions: ConsumeOptions) {
    yield* ensureTopics(consumeOptions.topics)
    const group = consumeOptions.group
    const maxBatch = consumeOptions.maxBatch ?? 500
    const fromBeginning = consumeOptions.fromBeginning ?? true
    const startAt = fromBeginning ? new Map<string, bigint>() : yield* endsOfUncommitted(group, consumeOptions.topics)
    const scope = yield* Effect.scope
    const consumer: Consumer = kafka.consumer({ groupId: group, ...consumerSettings })
    yield* Scope.addFinalizer(scope, Effect.promise(() => consumer.disconnect().catch(() => undefined)))
    // Handlers run as fibers of this scope. Closing the scope first stops new batches, then interrupts
    // the handlers in flight (their records stay uncommitted and go to the next owner), and only then
    // disconnects: kafkajs' disconnect waits for the batch in flight, which could otherwise be forever.
    const handlers = yield* FiberSet.make<void, unknown>()
    const runHandle = yield* FiberSet.runtimePromise(handlers)<never>()
    let closing = false
    // shutdown: stop taking batches, give the handlers in flight a bounded grace to finish, then interrupt
    yield* Scope.addFinalizer(scope, FiberSet.awaitEmpty(handlers).pipe(Effect.timeoutOption(`${consumeOptions.shutdownGraceMs ?? 10_000} millis`), Effect.asVoid))
    yield* Scope.addFinalizer(scope, Effect.sync(() => {
      closing = true
    }))
    yield* Effect.tryPromise({
      try: async () => {
        await consumer.connect()
        // with pinned starts, every partition is read from its start and the part before it skipped
        await consumer.subscribe({ topics: [...consumeOptions.topics], fromBeginning: fromBeginning || startAt.size > 0 })
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: consumeOptions.concurrency ?? 4,
          eachBatch: async ({ batch, heartbeat, isRunning, isStale, resolveOffset }) => {
            const start = startAt.get(`${batch.topic}/${batch.partition}`)
            let all = batch.messages
            if (start !== undefined && all.length > 0 && BigInt(all[0]!.offset) < start) {
              all = all.filter((m) => BigInt(m.offset) >= start)
              if (all.length === 0) {
                resolveOffset(batch.messages[batch.messages.length - 1]!.offset)
                return
              }
            }
            for (let begin = 0; begin < all.length; begin += maxBatch) {
              if (closing || !isRunning() || isStale()) return
              const slice = all.slice(begin, begin + maxBatch)
              const records: Array<DeliveredRecord> = slice.map((m) => ({
                topic: batch.topic,
                partition: batch.partition,
                offset: m.offset,
                timestamp: Number(m.timestamp),
                key: m.key === null ? null : m.key.toString("utf8"),
                value: m.value === null ? "" : m.value.toString("utf8"),
                headers: headersOf(m)
              }))
              // keep the membership alive while a slow handler runs, or the group evicts this member
              const beat = setInterval(() => void heartbeat().catch(() => undefined), 1_000)
              try {
                await runHandle(consumeOptions.handle(records).pipe(Effect.withSpan("KafkaBroker.handle")))
              } catch (e) {
                // interrupted because the scope is closing: leave the records uncommitted, quietly
                if (closing) return
                // a failure throws into kafkajs, which fetches again from the last resolved offset and retries
                throw e
              } finally {
                clearInterval(beat)
              }
              const last = slice[slice.length - 1]!.offset
              await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }])
              resolveOffset(last)
              await heartbeat()
            }
          }
        })
      },
      catch: toBrokerError(`Kafka consumer (group ${group})`)
    })
    if (startAt.size > 0) {
      // Record the pinned starts as the group's offsets, so a member joining later (or this one after a
      // restart) continues from them instead of pinning its own, later, end. Only where the group still
      // has no offset; best effort, the skipping above already holds for this member.
      yield* Effect.gen(function*() {
        const still = yield* endsOfUncommitted(group, consumeOptions.topics)
        const offsets = [...startAt].filter(([key]) => still.has(key)).map(([key, offset]) => {
          const at = key.lastIndexOf("/")
          return { topic: key.slice(0, at), partition: Number(key.slice(at + 1)), offset: offset.toString() }
        })
        if (offsets.length > 0) yield* Effect.tryPromise(() => consumer.commitOffsets(offsets))
      }).pipe(
        Effect.timeout("5 seconds"),
        Effect.catchCause((cause) => Effect.logDebug(`KafkaBroker: could not commit the start offsets of group ${group}`, cause))
      )
    }
  })

  const ping = Effect.tryPromise({
    try: () => admin.describeCluster(),
    catch: toBrokerError("Kafka ping")
  }).pipe(Effect.asVoid, Effect.timeoutOrElse({
    duration: "5 seconds",
    orElse: () => Effect.fail(new BrokerError({ reason: "Timeout", message: "Kafka ping timed out after 5 s" }))
  }))

  return { broker: Broker.of({ publish, ensureTopics, consume, ping }), client: KafkaClient.of({ kafka, options }) }
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: KafkaOptions): Layer.Layer<Broker | KafkaClient, BrokerError> =>
  Layer.effectContext(
    Effect.map(make(options), ({ broker, client }) => Context.make(Broker, broker).pipe(Context.add(KafkaClient, client)))
  )

export type { BrokerShape }
