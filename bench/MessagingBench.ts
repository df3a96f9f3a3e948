/**
 * Messaging benchmarks: the outbox relay (outbox → broker) and the consumer (broker → inbox claim +
 * handler), on PostgreSQL and on LMDB storage, against the raw @platformatic/kafka producer /
 * consumer (the client KafkaBroker is built on) doing the same Kafka work.
 *
 * - Relay: N envelopes (~300 bytes, keys spread over 100 aggregates) are staged in the outbox
 *   (untimed), then `OutboxRelay.drain(1000)` is timed until the outbox is empty. Raw: a connected
 *   idempotent producer with KafkaBroker's client options `send`s the same messages in batches of
 *   1000, acks -1. Both publish to a fresh topic pre-created with the same partitions.
 * - Consumer: N envelopes are pre-published (untimed) to a fresh topic; our consumer (`Consumer.make`
 *   with one no-op event handler, a fresh consumer group) and a raw consumer stream (fresh group,
 *   KafkaBroker's consumer settings, offsets committed per chunk of at most 500 records of a
 *   partition) read all of them. Timed from the first record delivered to the last record handled,
 *   so the group join (the same for both) is not part of the rate.
 */
import { Context, Deferred, Effect, Layer, Redacted, Schema } from "effect"
import { Admin, compatibilityPartitioner, Consumer as KafkaConsumer, type Message as KafkaMessage, Producer, stringDeserializers, stringSerializers } from "@platformatic/kafka"
import { open } from "lmdb"
import pg from "pg"
import { Broker, type BrokerShape, type OutgoingRecord } from "../src/broker/Broker.ts"
import * as KafkaBroker from "../src/kafka/KafkaBroker.ts"
import * as MemoryBroker from "../src/memory/MemoryBroker.ts"
import * as Message from "../src/broker/Message.ts"
import * as Replies from "../src/messaging/Replies.ts"
import * as Consumer from "../src/messaging/Consumer.ts"
import { Outbox } from "../src/queue/Outbox.ts"
import * as OutboxRelay from "../src/messaging/OutboxRelay.ts"
import * as Router from "../src/router/Router.ts"
import type * as Storage from "../src/storage/Storage.ts"
import type { Case } from "./Harness.ts"
import { pgSettings } from "./StorageBench.ts"

export const kafkaBrokers: ReadonlyArray<string> = (process.env["MINOS_TEST_KAFKA_BROKERS"] ?? "127.0.0.1:9092").split(",")

/** Partitions of every benchmark topic (KafkaBroker's default for the topics it creates). */
const PARTITIONS = 3
const RELAY_BATCH = 1000
const ENVELOPE_BYTES = 300

const uuid = () => crypto.randomUUID()
const aggregates = Array.from({ length: 100 }, uuid)

/** `n` envelopes for `topic`, ~300 bytes each, keyed by one of 100 aggregate ids (round robin). */
export const envelopes = (topic: string, n: number): Array<OutgoingRecord> =>
  Array.from({ length: n }, (_, i) => {
    const identifier = uuid()
    const key = aggregates[i % aggregates.length]!
    const content = { uuid: key, aggregate: "Exam", version: i + 1, type: "ExamUpdated", data: { seats: i, note: "" } }
    const bare = Message.encode(Message.make({ topic, identifier, content, strategy: "multicast" }))
    content.data.note = "x".repeat(Math.max(0, ENVELOPE_BYTES - bare.length))
    return { topic, key, value: Message.encode(Message.make({ topic, identifier, content, strategy: "multicast" })), headers: { "message-id": identifier } }
  })

// ---------------------------------------------------------------------------------------------
// the raw @platformatic/kafka side

type RawProducer = Producer<string, string, string, string>

export interface RawKafka {
  readonly admin: Admin
  readonly producer: RawProducer
  readonly options: KafkaBroker.KafkaOptions
  /** A fresh topic name of this run, created with {@link PARTITIONS} partitions. */
  readonly topic: (what: string) => Effect.Effect<string>
  /** Publishes `records` in batches of 1000, acks -1 (untimed setup of the consumer cases). */
  readonly publish: (records: ReadonlyArray<OutgoingRecord>) => Promise<void>
}

const toMessages = (records: ReadonlyArray<OutgoingRecord>) =>
  records.map((r) => ({ topic: r.topic, ...(r.key === null ? {} : { key: r.key }), value: r.value, headers: { ...r.headers } }))

/**
 * A raw admin and idempotent producer with KafkaBroker's client options, the Java partitioner and
 * acks -1. The topics it created are deleted when the scope closes.
 */
export const rawKafka = (runId: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const options: KafkaBroker.KafkaOptions = { brokers: kafkaBrokers, clientId: `bench-raw-${runId}` }
      const admin = new Admin(KafkaBroker.clientOptions(options))
      const producer: RawProducer = new Producer<string, string, string, string>({
        ...KafkaBroker.clientOptions(options, 8),
        idempotent: true,
        acks: -1,
        serializers: stringSerializers,
        partitioner: compatibilityPartitioner
      })
      return { admin, producer, options, created: [] as Array<string> }
    }),
    ({ admin, created, producer }) =>
      Effect.promise(async () => {
        await producer.close(true).catch(() => undefined)
        if (created.length > 0) await admin.deleteTopics({ topics: created }).catch(() => undefined)
        await admin.close().catch(() => undefined)
      })
  ).pipe(Effect.map(({ admin, created, options, producer }): RawKafka => {
    let n = 0
    return {
      admin,
      producer,
      options,
      topic: (what) =>
        Effect.promise(async () => {
          const topic = `bench.${runId}.${what}.${++n}`
          await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: -1 })
          created.push(topic)
          // a fresh topic takes a moment to elect its leaders
          for (let i = 0; i < 100; i++) {
            const metadata = await admin.metadata({ topics: [topic], forceUpdate: true })
            if (metadata.topics.get(topic)?.partitions.every((p) => p.leader >= 0)) break
            await new Promise((resolve) => setTimeout(resolve, 100))
          }
          return topic
        }),
      publish: async (records) => {
        for (let i = 0; i < records.length; i += RELAY_BATCH) await producer.send({ messages: toMessages(records.slice(i, i + RELAY_BATCH)) })
      }
    }
  }))

// ---------------------------------------------------------------------------------------------
// relay

/** Stages `records` in the outbox, 1000 per call (each call its own storage transaction). */
const stage = (records: ReadonlyArray<OutgoingRecord>) =>
  Effect.gen(function*() {
    const outbox = yield* Outbox
    for (let i = 0; i < records.length; i += RELAY_BATCH) yield* outbox.stage(records.slice(i, i + RELAY_BATCH))
    const pending = yield* outbox.pending
    if (pending !== records.length) return yield* Effect.die(new Error(`staged ${records.length} rows, the outbox holds ${pending}`))
  })

/** Stage N rows for a fresh topic (untimed), then time `OutboxRelay.drain(1000)` through the context's broker. */
const relayOurs = (topic: Effect.Effect<string>) =>
  Effect.fnUntraced(function*(ops: number) {
    const broker = yield* Broker
    const name = yield* topic
    yield* broker.ensureTopics([name])
    yield* stage(envelopes(name, ops))
    const start = performance.now()
    const n = yield* OutboxRelay.drain(RELAY_BATCH)
    const ms = performance.now() - start
    if (n !== ops) return yield* Effect.die(new Error(`drained ${n} rows, expected ${ops}`))
    return ms
  })

const relayRaw = (raw: RawKafka, label: string) => (ops: number) =>
  Effect.gen(function*() {
    const topic = yield* raw.topic(`relay-raw.${label}`)
    const records = envelopes(topic, ops)
    const batches: Array<ReturnType<typeof toMessages>> = []
    for (let i = 0; i < records.length; i += RELAY_BATCH) batches.push(toMessages(records.slice(i, i + RELAY_BATCH)))
    return yield* Effect.promise(async () => {
      const start = performance.now()
      for (const messages of batches) await raw.producer.send({ messages })
      return performance.now() - start
    })
  })

// ---------------------------------------------------------------------------------------------
// consumer

const Payload = Schema.Struct({ uuid: Schema.String, version: Schema.Int })

/** Records handled per round must arrive within this (a stuck round fails instead of hanging). */
const CONSUME_TIMEOUT = "90 seconds"

/**
 * Pre-publishes N envelopes to a fresh topic, then runs our consumer (fresh group, one no-op event
 * handler) until all are handled. The broker is wrapped to see when the first batch arrives and when
 * `handle` (decode → inbox claim + handler, one storage transaction per record) returned for all.
 */
const consumeOurs = (raw: RawKafka, label: string, replyTopic: string) => {
  let round = 0
  return (ops: number) =>
    Effect.scoped(Effect.gen(function*() {
      const topic = yield* raw.topic(`consume-ours.${label}`)
      yield* Effect.promise(() => raw.publish(envelopes(topic, ops)))
      const broker = yield* Broker
      const done = yield* Deferred.make<number>()
      let first: number | undefined
      let handled = 0
      const watched: BrokerShape = {
        ...broker,
        consume: (options) =>
          broker.consume({
            ...options,
            handle: (records) =>
              Effect.suspend(() => {
                first ??= performance.now()
                return options.handle(records)
              }).pipe(Effect.tap(() => {
                if (records.length === 0 || records[0]!.topic !== topic) return Effect.void
                handled += records.length
                return handled >= ops ? Deferred.succeed(done, performance.now()) : Effect.void
              }))
          })
      }
      const routes = yield* Router.make([Router.event(topic, { payload: Payload }, () => Effect.void)])
      yield* Consumer.make({ group: `${topic}.group.${++round}`, replyTopic, retry: 2, backoffMs: 20 }).pipe(
        Effect.provideService(Broker, watched),
        Effect.provideService(Router.Routes, routes)
      )
      const end = yield* Deferred.await(done).pipe(Effect.timeout(CONSUME_TIMEOUT), Effect.orDie)
      return end - first!
    }))
}

/**
 * A raw durable inbox claim of one record, its own storage transaction (what our consumer commits per
 * record, minus the framework): `(group, topic, identifier)`.
 */
export type RawClaim = (group: string, topic: string, identifier: string) => Promise<void>

/** Runs `f` over `items` with at most `n` at once. */
const limited = async <A>(items: ReadonlyArray<A>, n: number, f: (a: A) => Promise<void>) => {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await f(items[next++]!)
  }))
}

/**
 * The raw side: a consumer stream with KafkaBroker's consumer settings, fresh group, from the
 * earliest offset, offsets committed per chunk (what arrived together, at most 500 records of a
 * partition). Without `claim` it only reads the records (key and value as text); with `claim` it
 * also does our consumer's storage work by hand: parse the envelope, and per record one claim
 * transaction, records of one key in order, up to 16 keys at once (our consumer's default).
 */
const consumeRaw = (raw: RawKafka, label: string, claim?: RawClaim) => (ops: number) =>
  Effect.gen(function*() {
    const topic = yield* raw.topic(`consume-raw.${label}`)
    return yield* Effect.promise(async () => {
      await raw.publish(envelopes(topic, ops))
      const group = `${topic}.group`
      const settings = KafkaBroker.consumerSettings
      const consumer = new KafkaConsumer<string, string, string, string>({
        ...KafkaBroker.clientOptions({ ...raw.options, clientId: `${raw.options.clientId}-consumer` }, 10),
        groupId: group,
        deserializers: stringDeserializers,
        autocommit: false,
        sessionTimeout: settings.sessionTimeout,
        rebalanceTimeout: settings.rebalanceTimeout,
        heartbeatInterval: settings.heartbeatInterval,
        maxWaitTime: settings.maxWaitTime,
        highWaterMark: settings.highWaterMark
      })
      let first: number | undefined
      let handled = 0
      let finish!: (at: number) => void
      const done = new Promise<number>((resolve) => (finish = resolve))
      try {
        const stream = await consumer.consume({ topics: [topic], mode: "earliest", autocommit: false })
        let chunk: Array<KafkaMessage<string, string, string, string>> = []
        let working = Promise.resolve()
        const work = async (messages: ReadonlyArray<KafkaMessage<string, string, string, string>>) => {
          const byPartition = new Map<number, Array<KafkaMessage<string, string, string, string>>>()
          for (const m of messages) {
            const list = byPartition.get(m.partition)
            if (list === undefined) byPartition.set(m.partition, [m])
            else list.push(m)
          }
          for (const list of byPartition.values()) {
            for (let i = 0; i < list.length; i += 500) {
              const part = list.slice(i, i + 500)
              if (claim === undefined) {
                let bytes = 0
                for (const m of part) bytes += (m.value?.length ?? 0) + (m.key?.length ?? 0)
                if (bytes < 0) throw new Error("unreachable")
              } else {
                const byKey = new Map<string, Array<string>>()
                for (const m of part) {
                  const identifier = (JSON.parse(m.value ?? "{}") as { identifier: string }).identifier
                  const list = byKey.get(m.key ?? "")
                  if (list === undefined) byKey.set(m.key ?? "", [identifier])
                  else list.push(identifier)
                }
                await limited([...byKey.values()], 16, async (ids) => {
                  for (const id of ids) await claim(group, topic, id)
                })
              }
              const last = part[part.length - 1]!
              await consumer.commit({ offsets: [{ topic, partition: last.partition, offset: last.offset + 1n, leaderEpoch: last.leaderEpoch }] })
              handled += part.length
              if (handled >= ops) finish(performance.now())
            }
          }
        }
        stream.on("data", (m) => {
          first ??= performance.now()
          chunk.push(m)
          if (chunk.length === 1) {
            // what arrived together goes as one chunk, after the current one
            setImmediate(() => {
              const messages = chunk
              chunk = []
              working = working.then(() => work(messages))
            })
          }
        })
        let timer: NodeJS.Timeout | undefined
        const end = await Promise.race([
          done,
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`raw consumer: ${handled}/${ops} after ${CONSUME_TIMEOUT}`)), 90_000)))
        ]).finally(() => clearTimeout(timer))
        await working
        await stream.close().catch(() => undefined)
        return end - first!
      } finally {
        await consumer.close(true).catch(() => undefined)
      }
    })
  })

// ---------------------------------------------------------------------------------------------
// cases

type Services = Storage.Services | Broker | Replies.Replies

/**
 * The messaging cases on one storage backend. `context` holds the storage bundle (and, when Kafka
 * answers, the Kafka broker); `raw` is absent when Kafka does not answer (then only the in-process
 * relay runs).
 */
export const messagingCases = (
  label: string,
  storage: Context.Context<Storage.Services>,
  raw: RawKafka | undefined,
  kafka: Context.Context<Broker> | undefined,
  claim?: RawClaim
) =>
  Effect.gen(function*() {
    const memory = yield* MemoryBroker.make({ retainRecordsPerPartition: 1000 })
    let memoryTopics = 0
    const withBroker = (broker: Context.Context<Broker>) => <A, E>(effect: Effect.Effect<A, E, Services>) =>
      effect.pipe(Effect.provide(Replies.layer), Effect.provide(broker), Effect.provide(storage))

    const cases: Array<Case> = []
    if (raw !== undefined && kafka !== undefined) {
      const provide = withBroker(kafka)
      const replyTopic = yield* raw.topic(`replies.${label}`)
      const ours = relayOurs(raw.topic(`relay-ours.${label}`))
      cases.push({
        group: "relay",
        name: `${label} outbox → Kafka, drain(1000)`,
        ops: 20_000,
        rounds: 5,
        unit: "message",
        ours: { run: (ops) => provide(ours(ops)) },
        raw: { run: relayRaw(raw, label) },
        goalRatio: 0.9,
        goalRate: 15_000
      })
      const consume = consumeOurs(raw, label, replyTopic)
      cases.push({
        group: "consumer",
        name: `Kafka → ${label} inbox → no-op handler`,
        ops: 10_000,
        warmupOps: 2_000,
        unit: "message",
        ours: { run: (ops) => provide(consume(ops)) },
        raw: { run: consumeRaw(raw, label) },
        goalRatio: 0.5
      })
      if (claim !== undefined) {
        // not an issue goal: how far the framework is from the same durable work done by hand
        cases.push({
          group: "consumer",
          name: `Kafka → ${label} inbox, vs raw + hand-made claim`,
          ops: 6_000,
          warmupOps: 1_500,
          unit: "message",
          ours: { run: (ops) => provide(consume(ops)) },
          raw: { run: consumeRaw(raw, `${label}-claim`, claim) }
        })
      }
    }
    const ours = relayOurs(Effect.sync(() => `bench.memory.${label}.${++memoryTopics}`))
    cases.push({
      group: "relay",
      name: `${label} outbox → in-process broker, drain(1000)`,
      ops: 20_000,
      unit: "message",
      ours: { run: (ops) => withBroker(Context.make(Broker, memory))(ours(ops)) }
    })
    return cases
  })

/** The Kafka broker of our side, as a context (built in the caller's scope). */
export const kafkaBroker = (runId: string) =>
  Layer.build(KafkaBroker.layer({ brokers: kafkaBrokers, clientId: `bench-ours-${runId}`, partitions: PARTITIONS }))

/**
 * The hand-made claim on PostgreSQL: a `raw_inbox` table shaped like `minos_inbox` in `schema` (which
 * must exist), one pooled connection per claim running BEGIN; INSERT … ON CONFLICT DO NOTHING; COMMIT.
 */
export const pgClaim = (schema: string) =>
  Effect.gen(function*() {
    const s = pgSettings(schema)
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new pg.Pool({ host: s.host, port: s.port, database: s.database, user: s.user, password: Redacted.value(s.password), max: s.maxConnections, options: `-c search_path=${schema}` })
      ),
      (pool) => Effect.promise(() => pool.end())
    )
    yield* Effect.promise(() => pool.query(`CREATE TABLE IF NOT EXISTS raw_inbox (LIKE minos_inbox INCLUDING ALL)`))
    const claim: RawClaim = async (group, topic, identifier) => {
      const client = await pool.connect()
      try {
        await client.query("BEGIN")
        await client.query(`INSERT INTO raw_inbox (consumer_group, topic, identifier, handled_at) VALUES ($1, $2, $3, now()) ON CONFLICT DO NOTHING RETURNING 1`, [group, topic, identifier])
        await client.query("COMMIT")
      } finally {
        client.release()
      }
    }
    return claim
  })

/**
 * The hand-made claim on LMDB, in its own environment at `path`: one `transactionSync` per claim with
 * what `LmdbInbox.claim` commits (get `inbox[group,topic,id]`, put it, put `inboxage[now,group,topic,id]`).
 */
export const lmdbClaim = (path: string) =>
  Effect.gen(function*() {
    const root = yield* Effect.acquireRelease(Effect.sync(() => open({ path, maxDbs: 32 })), (root) => Effect.promise(() => root.close()))
    const inbox = root.openDB<number, [string, string, string]>({ name: "inbox" })
    const inboxage = root.openDB<true, [number, string, string, string]>({ name: "inboxage" })
    const claim: RawClaim = async (group, topic, identifier) => {
      const now = Date.now()
      root.transactionSync(() => {
        if (inbox.get([group, topic, identifier]) !== undefined) return
        inbox.putSync([group, topic, identifier], now)
        inboxage.putSync([now, group, topic, identifier], true)
      })
    }
    return claim
  })
