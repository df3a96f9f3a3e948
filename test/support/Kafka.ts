/**
 * Kafka helpers for tests that go around the port: a plain @platformatic/kafka consumer that reads
 * a topic from its beginning, the leader of a partition, and control of the 3-broker cluster of
 * `scripts/kafka.sh cluster` (SIGKILL a node, start it again).
 */
import { Admin, Consumer, stringDeserializers } from "@platformatic/kafka"
import { Duration, Effect } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as KafkaBroker from "../../src/kafka/KafkaBroker.ts"

export interface PlainRecord {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  readonly key: string | null
  readonly value: string
  readonly headers: Readonly<Record<string, string>>
}

const options = (brokers: ReadonlyArray<string>, clientId: string) => KafkaBroker.clientOptions({ brokers, clientId }, 10)

/**
 * Reads `topic` from its beginning with a plain consumer (its own fresh group, no commits) until
 * `done(records)` holds or `timeout` passes; returns what it read either way.
 */
export const readTopic = (
  brokers: ReadonlyArray<string>,
  topic: string,
  done: (records: ReadonlyArray<PlainRecord>) => boolean,
  timeout: Duration.Input = "60 seconds"
): Effect.Effect<ReadonlyArray<PlainRecord>> =>
  Effect.promise(async () => {
    const consumer = new Consumer<string, string, string, string>({
      ...options(brokers, "test-reader"),
      groupId: `test-reader.${topic}.${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
      deserializers: stringDeserializers,
      autocommit: false,
      sessionTimeout: 10_000,
      rebalanceTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTime: 500
    })
    const records: Array<PlainRecord> = []
    try {
      const stream = await consumer.consume({ topics: [topic], mode: "earliest", autocommit: false })
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Duration.toMillis(Duration.fromInputUnsafe(timeout)))
        const check = () => {
          if (done(records)) {
            clearTimeout(timer)
            resolve()
          }
        }
        stream.on("data", (m) => {
          const headers: Record<string, string> = {}
          for (const [k, v] of m.headers) headers[k] = v
          records.push({ topic: m.topic, partition: m.partition, offset: m.offset, key: m.key ?? null, value: m.value ?? "", headers })
          check()
        })
        stream.on("error", () => resolve())
        check()
      })
      await stream.close().catch(() => undefined)
    } finally {
      await consumer.close(true).catch(() => undefined)
    }
    return records
  })

/** The node id of the leader of `topic`/`partition` (fresh metadata). */
export const leaderOf = (brokers: ReadonlyArray<string>, topic: string, partition: number) =>
  Effect.promise(async () => {
    const admin = new Admin(options(brokers, "test-admin"))
    try {
      const metadata = await admin.metadata({ topics: [topic], forceUpdate: true })
      const leader = metadata.topics.get(topic)?.partitions[partition]?.leader
      if (leader === undefined || leader < 0) throw new Error(`${topic}/${partition} has no leader`)
      return leader
    } finally {
      await admin.close().catch(() => undefined)
    }
  })

/** Partition count and replication factor of a topic, from the cluster. */
export const describeTopic = (brokers: ReadonlyArray<string>, topic: string) =>
  Effect.promise(async () => {
    const admin = new Admin(options(brokers, "test-admin"))
    try {
      const metadata = await admin.metadata({ topics: [topic], forceUpdate: true })
      const t = metadata.topics.get(topic)
      return { partitions: t?.partitionsCount ?? 0, replicas: t?.partitions[0]?.replicas.length ?? 0 }
    } finally {
      await admin.close().catch(() => undefined)
    }
  })

/** Whether a consumer group exists on the cluster. */
export const groupExists = (brokers: ReadonlyArray<string>, group: string) =>
  Effect.promise(async () => {
    const admin = new Admin(options(brokers, "test-admin"))
    try {
      const groups = await admin.listGroups()
      return groups.has(group)
    } finally {
      await admin.close().catch(() => undefined)
    }
  })

const script = fileURLToPath(new URL("../../scripts/kafka.sh", import.meta.url))

const cluster = (...args: ReadonlyArray<string>) =>
  Effect.callback<string, Error>((resume) => {
    execFile("bash", [script, "cluster", ...args], { timeout: 180_000 }, (error, stdout, stderr) => {
      if (error) resume(Effect.fail(new Error(`kafka.sh cluster ${args.join(" ")}: ${error.message}\n${stdout}${stderr}`)))
      else resume(Effect.succeed(stdout))
    })
  }).pipe(Effect.orDie)

/** SIGKILLs cluster node `n` (1-3), as a crash would. */
export const killNode = (n: number) => cluster("kill", String(n)).pipe(Effect.asVoid)
/** Starts cluster node `n` again and waits until it serves. */
export const startNode = (n: number) => cluster("start", String(n)).pipe(Effect.asVoid)
/** Starts whatever node of the cluster is down (a test that killed one restores the cluster). */
export const clusterUp = cluster("up").pipe(Effect.asVoid)
