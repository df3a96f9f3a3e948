/**
 * The `Broker` port on Apache Kafka, through kafkajs.
 *
 * - Publishing waits for all in-sync replicas (`acks: -1`); topics are created on first use.
 * - Consuming: one kafkajs consumer per `consume` call, in the given group. Each partition's records
 *   go to `handle` in order; the group offset is committed explicitly after `handle` succeeded, never
 *   before, so a member that dies mid-batch leaves the records to the next one.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Scope } from "effect"
import { type Admin, type Consumer, Kafka, type KafkaMessage, logLevel, type LogEntry, Partitioners, type Producer } from "kafkajs"
import { MinosConfig } from "../config/MinosConfig.ts"
import { Broker, BrokerError, type BrokerShape, type ConsumeOptions, type DeliveredRecord, isValidTopic, type OutgoingRecord } from "./Broker.ts"

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
  const forward = (level: logLevel) => (entry: LogEntry) => {
    const text = `kafkajs ${entry.namespace}: ${entry.log.message}`
    runFork(level <= logLevel.ERROR ? Effect.logError(text) : Effect.logWarning(text))
  }
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    logLevel: logLevel.WARN,
    logCreator: (level) => forward(level),
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

  const consume = Effect.fn("KafkaBroker.consume")(function*(consumeOptions: ConsumeOptions) {
    yield* ensureTopics(consumeOptions.topics)
    const maxBatch = consumeOptions.maxBatch ?? 500
    const run = Effect.runPromiseWith(yield* Effect.context<never>())
    const scope = yield* Effect.scope
    const consumer: Consumer = kafka.consumer({
      groupId: consumeOptions.group,
      allowAutoTopicCreation: false,
      sessionTimeout: 10_000,
      rebalanceTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: 100,
      retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 5_000 }
    })
    yield* Scope.addFinalizer(scope, Effect.promise(() => consumer.disconnect().catch(() => undefined)))
    yield* Effect.tryPromise({
      try: async () => {
        await consumer.connect()
        await consumer.subscribe({ topics: [...consumeOptions.topics], fromBeginning: consumeOptions.fromBeginning ?? true })
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: consumeOptions.concurrency ?? 4,
          eachBatch: async ({ batch, heartbeat, isRunning, isStale, resolveOffset }) => {
            const all = batch.messages
            for (let start = 0; start < all.length; start += maxBatch) {
              if (!isRunning() || isStale()) return
              const slice = all.slice(start, start + maxBatch)
              const records: Array<DeliveredRecord> = slice.map((m) => ({
                topic: batch.topic,
                partition: batch.partition,
                offset: m.offset,
                timestamp: Number(m.timestamp),
                key: m.key === null ? null : m.key.toString("utf8"),
                value: m.value === null ? "" : m.value.toString("utf8"),
                headers: headersOf(m)
              }))
              // a failure throws into kafkajs, which seeks back to the last committed offset and retries
              await run(consumeOptions.handle(records).pipe(Effect.withSpan("KafkaBroker.handle")))
              const last = slice[slice.length - 1]!.offset
              await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }])
              resolveOffset(last)
              await heartbeat()
            }
          }
        })
      },
      catch: toBrokerError(`Kafka consumer (group ${consumeOptions.group})`)
    })
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

/**
 * The Kafka broker the config names (`broker.backend: kafka`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerFromConfig: Layer.Layer<Broker | KafkaClient, BrokerError, MinosConfig> = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* MinosConfig
    if (config.broker.backend !== "kafka") return yield* Effect.die(new Error("KafkaBroker.layerFromConfig: broker.backend is not kafka"))
    return layer({ brokers: config.broker.brokers, clientId: config.broker.clientId })
  })
)

export type { BrokerShape }
