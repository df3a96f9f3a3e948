/**
 * Kafka as the checker sees it: topics read to their end with a plain client of the project's
 * Kafka library (no effect-minos code in between), and raw records produced for the poison tests.
 */
import { Effect } from "effect"
import { Kafka, logLevel } from "kafkajs"

/** The brokers the fault suite uses (`MINOS_FAULTS_KAFKA_BROKERS`, comma-separated). */
export const brokers: ReadonlyArray<string> = (process.env["MINOS_FAULTS_KAFKA_BROKERS"] ?? "127.0.0.1:9092").split(",")

export interface Record {
  readonly topic: string
  readonly partition: number
  readonly offset: string
  readonly key: string | null
  readonly value: Buffer | null
  readonly headers: Readonly<globalThis.Record<string, string>>
}

const client = (id: string) => new Kafka({ clientId: id, brokers: [...brokers], logLevel: logLevel.NOTHING, retry: { retries: 5 } })

/**
 * Every record of `topics` from the beginning up to the end each partition has now (topics that do
 * not exist count as empty). Fails after `timeoutMs`.
 */
export const readAll = (topics: ReadonlyArray<string>, timeoutMs = 60_000): Effect.Effect<ReadonlyArray<Record>, Error> =>
  Effect.tryPromise({
    try: async () => {
      const kafka = client(`faults-checker-${process.pid}`)
      const admin = kafka.admin()
      await admin.connect()
      const existing = new Set(await admin.listTopics())
      const wanted = topics.filter((t) => existing.has(t))
      const ends = new Map<string, number>()
      for (const topic of wanted) {
        for (const p of await admin.fetchTopicOffsets(topic)) {
          const high = Number(p.high)
          if (high > Number(p.low)) ends.set(`${topic}/${p.partition}`, high)
        }
      }
      await admin.disconnect()
      if (ends.size === 0) return []
      const consumer = kafka.consumer({ groupId: `faults-checker-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`, sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 200 })
      await consumer.connect()
      await consumer.subscribe({ topics: wanted, fromBeginning: true })
      const out: Array<Record> = []
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`reading ${wanted.join(",")} did not reach the end in ${timeoutMs} ms (${ends.size} partitions left)`)), timeoutMs)
          void consumer.run({
            eachBatch: async ({ batch }) => {
              const k = `${batch.topic}/${batch.partition}`
              const end = ends.get(k)
              for (const m of batch.messages) {
                if (end === undefined || Number(m.offset) >= end) continue
                const headers: globalThis.Record<string, string> = {}
                for (const [h, v] of Object.entries(m.headers ?? {})) if (v !== undefined) headers[h] = String(v)
                out.push({ topic: batch.topic, partition: batch.partition, offset: m.offset, key: m.key?.toString() ?? null, value: m.value, headers })
              }
              const last = batch.messages.at(-1)
              if (end !== undefined && last !== undefined && Number(last.offset) >= end - 1) ends.delete(k)
              if (ends.size === 0) {
                clearTimeout(timer)
                resolve()
              }
            }
          }).catch(reject)
        })
      } finally {
        await consumer.disconnect()
      }
      return out
    },
    catch: (e) => (e instanceof Error ? e : new Error(String(e)))
  })

/** Produces raw records (values as given, bytes included), waiting for all in-sync replicas. */
export const produce = (topic: string, records: ReadonlyArray<{ readonly key: string | null; readonly value: Buffer | string | null; readonly headers?: globalThis.Record<string, string> }>) =>
  Effect.tryPromise({
    try: async () => {
      const kafka = client(`faults-producer-${process.pid}`)
      const admin = kafka.admin()
      await admin.connect()
      await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true }).catch(() => false)
      await admin.disconnect()
      const producer = kafka.producer({ allowAutoTopicCreation: true })
      await producer.connect()
      try {
        await producer.send({ topic, acks: -1, messages: records.map((r) => ({ key: r.key, value: r.value, ...(r.headers ? { headers: r.headers } : {}) })) })
      } finally {
        await producer.disconnect()
      }
    },
    catch: (e) => (e instanceof Error ? e : new Error(String(e)))
  })
