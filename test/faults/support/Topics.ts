/**
 * Kafka as the checker sees it: topics read to their end with a plain client of the project's
 * Kafka library (@platformatic/kafka, no effect-minos code in between), and raw records produced
 * for the poison tests.
 */
import { Admin, Consumer, Producer, stringDeserializers } from "@platformatic/kafka"
import { Effect, Schedule } from "effect"
import * as KafkaBroker from "../../../src/kafka/KafkaBroker.ts"
import * as Cluster from "./Cluster.ts"

/** The brokers the fault suite uses: the 3-broker cluster (see `Cluster.ts`). */
export const brokers: ReadonlyArray<string> = Cluster.brokers

export interface Record {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  readonly key: string | null
  readonly value: string
  readonly headers: Readonly<globalThis.Record<string, string>>
}

const options = (clientId: string, on: ReadonlyArray<string> = brokers) => KafkaBroker.clientOptions({ brokers: on, clientId }, 10)

const existingTopics = async (topics: ReadonlyArray<string>, on: ReadonlyArray<string>) => {
  const admin = new Admin(options("faults-admin", on))
  try {
    const existing = new Set(await admin.listTopics())
    return topics.filter((t) => existing.has(t))
  } finally {
    await admin.close().catch(() => undefined)
  }
}

/**
 * Every record of `topics` from the beginning up to the end each partition has now (topics that do
 * not exist count as empty). Fails after `timeoutMs`.
 */
export const readAll = (topics: ReadonlyArray<string>, timeoutMs = 60_000, on: ReadonlyArray<string> = brokers): Effect.Effect<ReadonlyArray<Record>, Error> =>
  Effect.tryPromise({
    try: async () => {
      const wanted = await existingTopics(topics, on)
      if (wanted.length === 0) return []
      const consumer = new Consumer<string, string, string, string>({
        ...options("faults-checker", on),
        groupId: `faults-checker-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
        deserializers: stringDeserializers,
        autocommit: false,
        sessionTimeout: 10_000,
        rebalanceTimeout: 10_000,
        heartbeatInterval: 1_000,
        maxWaitTime: 200
      })
      const out: Array<Record> = []
      try {
        const ends = new Map<string, bigint>()
        for (const [topic, partitions] of await consumer.listOffsets({ topics: [...wanted] })) {
          partitions.forEach((end, partition) => {
            if (end > 0n) ends.set(`${topic}/${partition}`, end)
          })
        }
        if (ends.size === 0) return []
        const stream = await consumer.consume({ topics: [...wanted], mode: "earliest", autocommit: false })
        try {
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`reading ${wanted.join(",")} did not reach the end in ${timeoutMs} ms (${ends.size} partitions left)`)), timeoutMs)
            stream.on("data", (m) => {
              const k = `${m.topic}/${m.partition}`
              const end = ends.get(k)
              if (end === undefined || m.offset >= end) return
              const headers: globalThis.Record<string, string> = {}
              for (const [h, v] of m.headers) headers[h] = v
              out.push({ topic: m.topic, partition: m.partition, offset: m.offset, key: m.key ?? null, value: m.value ?? "", headers })
              if (m.offset >= end - 1n) ends.delete(k)
              if (ends.size === 0) {
                clearTimeout(timer)
                resolve()
              }
            })
            stream.on("error", (e) => {
              clearTimeout(timer)
              reject(e)
            })
          })
        } finally {
          await stream.close().catch(() => undefined)
        }
      } finally {
        await consumer.close(true).catch(() => undefined)
      }
      return out
    },
    catch: (e) => (e instanceof Error ? e : new Error(String(e)))
  })

/** Produces raw records (values as given, bytes included), acknowledged by all in-sync replicas. */
export const produce = (on: ReadonlyArray<string>, topic: string, records: ReadonlyArray<{ readonly key: string | null; readonly value: Buffer | string | null; readonly headers?: globalThis.Record<string, string> }>) =>
  Effect.tryPromise({
    try: async () => {
      const admin = new Admin(options("faults-admin", on))
      try {
        if ((await existingTopics([topic], on)).length === 0) {
          await admin.createTopics({ topics: [topic], partitions: 3, replicas: -1 }).catch(() => undefined)
        }
      } finally {
        await admin.close().catch(() => undefined)
      }
      const producer = new Producer({ ...options("faults-producer", on), acks: -1 })
      try {
        const bytes = (v: Buffer | string | null | undefined) => (v === null || v === undefined ? undefined : typeof v === "string" ? Buffer.from(v, "utf8") : v)
        await producer.send({
          messages: records.map((r) => ({
            topic,
            ...(r.key === null ? {} : { key: Buffer.from(r.key, "utf8") }),
            ...(r.value === null ? {} : { value: bytes(r.value)! }),
            ...(r.headers ? { headers: new Map(Object.entries(r.headers).map(([k, v]) => [Buffer.from(k, "utf8"), Buffer.from(v, "utf8")])) } : {})
          }))
        })
      } finally {
        await producer.close(true).catch(() => undefined)
      }
    },
    catch: (e) => new Error(`producing to ${topic} failed: ${describe(e)}`)
  }).pipe(
    // a fresh topic's leaders may take a moment to be known everywhere
    Effect.retry({ times: 4, schedule: Schedule.exponential("500 millis") })
  )

const describe = (e: unknown): string => {
  const inner = (e as { errors?: ReadonlyArray<unknown> }).errors
  const message = e instanceof Error ? e.message : String(e)
  return inner === undefined ? message : `${message} (${inner.map(describe).join("; ")})`
}
