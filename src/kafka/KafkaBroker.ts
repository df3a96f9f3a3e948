/**
 * The `Broker` port on Apache Kafka, through @platformatic/kafka.
 *
 * - Publishing: one idempotent producer (acks from all in-sync replicas, retries deduplicated by
 *   the broker). Each record's partition is chosen here with Kafka's Java partitioner (murmur2 of
 *   the key, so keys keep the partitions other Kafka clients give them; round robin without a key)
 *   and the result is read per partition: when a publish fails part-way, the error lists exactly the
 *   records whose partition the broker acknowledged (`BrokerError.acknowledged`). All records of a
 *   partition travel in one request, so a record is never acknowledged while an earlier one of its
 *   partition (hence of its key) was not.
 * - Topics are created on first use, with the configured partitions and replication factor (the
 *   broker's defaults otherwise), and used once every partition has a leader.
 * - Consuming: see `internal/GroupConsumer.ts` (per-partition order, partitions in parallel, commits
 *   after handling in the member's generation, rebalance safety, bounded shutdown grace).
 * - Retriable failures at start-up (a coordinator still loading, a broker restarting) are retried
 *   with a `Schedule`; any listed bootstrap broker that answers will do.
 *
 * @since 0.1.0
 */
import { Admin, compatibilityPartitioner, Producer, stringSerializers } from "@platformatic/kafka"
import { Context, Effect, Layer, Schedule } from "effect"
import { Broker, BrokerError, type BrokerShape, type ConsumeOptions, isValidTopic, type OutgoingRecord } from "../broker/Broker.ts"
import { baseOptions, type ClientOptions, invalidTopic, isRetriable, type SaslOptions, type TlsOptions, toBrokerError } from "./internal/Client.ts"
import * as GroupConsumer from "./internal/GroupConsumer.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface KafkaOptions {
  /** Bootstrap brokers (`host:port`); any one that answers is enough. */
  readonly brokers: ReadonlyArray<string>
  readonly clientId: string
  /** Partitions of the topics this client creates (default: the broker's `num.partitions`). */
  readonly partitions?: number | undefined
  /** Replication factor of the topics this client creates (default: the broker's `default.replication.factor`). */
  readonly replicationFactor?: number | undefined
  /** How long a request may take before it fails with a retryable `Timeout` (default 30 s). */
  readonly requestTimeoutMs?: number | undefined
  /** TLS towards the brokers (PEM contents). */
  readonly tls?: TlsOptions | undefined
  /** SASL PLAIN or SCRAM-SHA-256/512 authentication. */
  readonly sasl?: SaslOptions | undefined
}

export type { SaslOptions, TlsOptions }

/**
 * The consumer settings every `consume` uses (benchmarks reuse them for the raw baseline).
 *
 * @since 0.1.0
 */
export const consumerSettings = GroupConsumer.consumerSettings

/**
 * The client options KafkaBroker gives @platformatic/kafka (benchmarks and tests build raw clients
 * with them). `retries`: how often a client retries a retriable failure by itself.
 *
 * @since 0.1.0
 */
export const clientOptions = (options: KafkaOptions, retries = 5) => baseOptions(toClientOptions(options), retries)

const toClientOptions = (options: KafkaOptions): ClientOptions => ({
  brokers: options.brokers,
  clientId: options.clientId,
  requestTimeoutMs: options.requestTimeoutMs,
  tls: options.tls,
  sasl: options.sasl
})

/**
 * The raw clients, for code (benchmarks, tests) that needs to go around the port.
 *
 * @category services
 * @since 0.1.0
 */
export class KafkaClient extends Context.Service<KafkaClient, {
  readonly admin: Admin
  readonly producer: Producer<string, string, string, string>
  readonly options: KafkaOptions
}>()("effect-minos/kafka/KafkaClient") {}

/** Retriable failures of admin operations and start-up: 200 ms doubling to 2 s, for about 40 s. */
const transient = Schedule.min([Schedule.exponential("200 millis"), Schedule.spaced("2 seconds")]).pipe(Schedule.upTo({ times: 25 }))
const retryTransient = <A, R>(effect: Effect.Effect<A, BrokerError, R>) =>
  effect.pipe(Effect.retry({ schedule: transient, while: (e) => e.isRetryable || isRetriable(e.cause) }))

/** Until every partition of the topics has a leader: 100 ms apart, at most about 30 s. */
const leaderPoll = Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 300 }))

/**
 * Builds the port on a connected producer and admin client; both are closed with the scope.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("KafkaBroker.make")(function*(options: KafkaOptions) {
  const client = toClientOptions(options)
  const admin: Admin = yield* Effect.acquireRelease(
    Effect.sync(() => new Admin(baseOptions({ ...client, clientId: `${options.clientId}-admin` }, 5))),
    (a) => Effect.promise(() => a.close().catch(() => undefined)).pipe(Effect.timeoutOption("10 seconds"))
  )
  const producer: Producer<string, string, string, string> = yield* Effect.acquireRelease(
    Effect.sync(() =>
      new Producer<string, string, string, string>({
        ...baseOptions(client, 8),
        idempotent: true,
        acks: -1,
        serializers: stringSerializers,
        partitioner: compatibilityPartitioner
      })
    ),
    (p) => Effect.promise(() => p.close(true).catch(() => undefined)).pipe(Effect.timeoutOption("10 seconds"))
  )
  // the cluster answers (any bootstrap broker will do), or start-up fails with a typed error
  yield* retryTransient(Effect.tryPromise({ try: () => admin.metadata({ topics: [] }), catch: toBrokerError("Kafka connect") }))

  const known = new Set<string>()
  const ensureTopics = Effect.fn("KafkaBroker.ensureTopics")(function*(topics: ReadonlyArray<string>) {
    const missing = [...new Set(topics)].filter((t) => !known.has(t))
    if (missing.length === 0) return
    const bad = missing.find((t) => !isValidTopic(t))
    if (bad !== undefined) return yield* Effect.fail(invalidTopic(bad))
    yield* retryTransient(Effect.tryPromise({
      try: async () => {
        const existing = new Set(await admin.listTopics())
        const create = missing.filter((t) => !existing.has(t))
        if (create.length === 0) return
        try {
          await admin.createTopics({ topics: create, partitions: options.partitions ?? -1, replicas: options.replicationFactor ?? -1 })
        } catch (e) {
          // another process created it between our list and create
          if (!(e instanceof Error) || !isAlreadyThere(e)) throw e
        }
      },
      catch: toBrokerError("Kafka create topics")
    }))
    // a fresh topic takes a moment to elect its leaders
    yield* Effect.tryPromise({
      try: async () => {
        const metadata = await admin.metadata({ topics: missing, forceUpdate: true })
        for (const t of missing) {
          const topic = metadata.topics.get(t)
          if (topic === undefined || topic.partitions.length === 0 || topic.partitions.some((p) => p === undefined || p.leader < 0)) {
            throw new Error(`topic ${t} has partitions without a leader`)
          }
        }
      },
      catch: (e) => new BrokerError({ reason: "Unavailable", message: `Kafka: the leaders of ${missing.join(", ")} are not elected yet`, cause: e })
    }).pipe(Effect.retry({ schedule: leaderPoll }))
    for (const t of missing) known.add(t)
  })

  const roundRobin = new Map<string, number>()
  /** Partition counts of the topics, from the producer's metadata (refreshed every few seconds). */
  const partitionCounts = (topics: ReadonlyArray<string>) =>
    Effect.tryPromise({
      try: async () => {
        const metadata = await producer.metadata({ topics: [...topics] })
        return new Map(topics.map((t) => [t, metadata.topics.get(t)?.partitionsCount ?? 0]))
      },
      catch: toBrokerError("Kafka metadata")
    })

  const publish = Effect.fn("KafkaBroker.publish")(function*(records: ReadonlyArray<OutgoingRecord>) {
    if (records.length === 0) return
    const bad = records.find((r) => !isValidTopic(r.topic))
    if (bad !== undefined) return yield* Effect.fail(invalidTopic(bad.topic))
    const topics = [...new Set(records.map((r) => r.topic))]
    yield* ensureTopics(topics)
    const counts = yield* partitionCounts(topics)
    const partitions = records.map((r) => {
      const count = counts.get(r.topic)!
      if (r.key !== null) return compatibilityPartitioner(undefined as never, Buffer.from(r.key, "utf8")) % count
      const n = roundRobin.get(r.topic) ?? 0
      roundRobin.set(r.topic, n + 1)
      return n % count
    })
    if (records.some((_, i) => !Number.isInteger(partitions[i]))) {
      return yield* Effect.fail(new BrokerError({ reason: "Unavailable", message: `Kafka: no partitions known for ${topics.join(", ")}` }))
    }
    yield* Effect.tryPromise({
      try: () =>
        producer.send({
          messages: records.map((r, i) => ({ topic: r.topic, partition: partitions[i]!, ...(r.key === null ? {} : { key: r.key }), value: r.value, headers: { ...r.headers } }))
        }),
      catch: (cause) => {
        // what the broker acknowledged before the failure: every record of a partition it answered for
        const produced = (cause as { produced?: { offsets?: ReadonlyArray<{ topic: string; partition: number }> } }).produced
        const done = new Set((produced?.offsets ?? []).map((o) => `${o.topic}:${o.partition}`))
        const acknowledged = records.flatMap((r, i) => (done.has(`${r.topic}:${partitions[i]}`) ? [i] : []))
        return toBrokerError(`Kafka publish of ${records.length} records`, acknowledged)(cause)
      }
    })
  })

  const consume = Effect.fn("KafkaBroker.consume")(function*(consumeOptions: ConsumeOptions) {
    yield* ensureTopics(consumeOptions.topics)
    yield* GroupConsumer.consume(client, admin, consumeOptions)
  })

  const ping = Effect.tryPromise({
    try: () => admin.metadata({ topics: [], forceUpdate: true }),
    catch: toBrokerError("Kafka ping")
  }).pipe(Effect.asVoid, Effect.timeoutOrElse({
    duration: "5 seconds",
    orElse: () => Effect.fail(new BrokerError({ reason: "Timeout", message: "Kafka ping timed out after 5 s" }))
  }))

  return { broker: Broker.of({ publish, ensureTopics, consume, ping }), client: KafkaClient.of({ admin, producer, options }) }
})

const isAlreadyThere = (e: Error): boolean => {
  const nested = (e as { errors?: ReadonlyArray<Error> }).errors
  if (Array.isArray(nested) && nested.length > 0) return nested.every(isAlreadyThere)
  return (e as { apiId?: string }).apiId === "TOPIC_ALREADY_EXISTS"
}

/**
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: KafkaOptions): Layer.Layer<Broker | KafkaClient, BrokerError> =>
  Layer.effectContext(
    Effect.map(make(options), ({ broker, client }) => Context.make(Broker, broker).pipe(Context.add(KafkaClient, client)))
  )

export type { BrokerShape }
