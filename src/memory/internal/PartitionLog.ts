/**
 * The in-process broker's topics: each partition an append-only array of records with offsets
 * `base`, `base + 1`, …; a publish is placed (partition per record) before anything is written, so
 * the persistence can write exactly what the append will lay out.
 *
 * @internal
 */
import { BrokerError, type DeliveredRecord, isValidTopic, type OutgoingRecord } from "../../broker/Broker.ts"
import { partitionOf } from "./Partitioner.ts"

export interface Partition {
  readonly topic: string
  readonly index: number
  /** Offset of `records[0]` (above 0 once retention dropped the head). */
  base: number
  records: Array<DeliveredRecord>
  /** Idle workers to wake on the next append. */
  readonly waiters: Set<() => void>
}

export interface Topic {
  readonly name: string
  readonly partitions: ReadonlyArray<Partition>
  roundRobin: number
}

/** Where each record of a publish goes, decided before anything is written. */
export interface Placement {
  /** The partition index of each record, in order. */
  readonly indexes: Array<number>
  /** Each keyless topic's round-robin counter after the publish. */
  readonly roundRobin: Map<string, number>
}

/** The next offset of a partition. */
export const endOf = (p: Partition): number => p.base + p.records.length

const invalidTopic = (topic: string) =>
  new BrokerError({ reason: "InvalidTopic", message: `Invalid topic name ${JSON.stringify(topic)}: use 1-249 of [A-Za-z0-9._-]` })

export interface PartitionLog {
  readonly topics: ReadonlyMap<string, Topic>
  /** Partitions of a topic created here (a reloaded topic keeps its own count). */
  readonly partitionCount: number
  /** Keep at least this many (and fewer than twice as many) records per partition. */
  readonly retain: number | undefined
  /** Adds a topic with `count` empty partitions. */
  readonly create: (name: string, count: number) => Topic
  /** The topic, created with `partitionCount` partitions when missing. */
  readonly topic: (name: string) => Topic
  /** `InvalidTopic` for the first name that is neither known nor a valid Kafka topic name. */
  readonly checkTopics: (names: ReadonlyArray<string>) => BrokerError | undefined
  readonly checkRecords: (records: ReadonlyArray<OutgoingRecord>) => BrokerError | undefined
  readonly place: (records: ReadonlyArray<OutgoingRecord>) => Placement
  /** Appends a placed publish and wakes the idle workers of the partitions it touched. */
  readonly append: (records: ReadonlyArray<OutgoingRecord>, placement: Placement, timestamp: number) => void
  /** Drops a partition's records below offset `to`. */
  readonly dropBelow: (partition: Partition, to: number) => void
}

export const make = (options: { readonly partitions: number; readonly retain: number | undefined }): PartitionLog => {
  const { partitions: partitionCount, retain } = options
  const topics = new Map<string, Topic>()

  const create = (name: string, count: number): Topic => {
    const partitions: Array<Partition> = []
    for (let index = 0; index < count; index++) {
      partitions.push({ topic: name, index, base: 0, records: [], waiters: new Set() })
    }
    const topic: Topic = { name, partitions, roundRobin: 0 }
    topics.set(name, topic)
    return topic
  }

  const topic = (name: string): Topic => topics.get(name) ?? create(name, partitionCount)

  const checkTopics = (names: ReadonlyArray<string>): BrokerError | undefined => {
    for (const name of names) {
      if (!topics.has(name) && !isValidTopic(name)) return invalidTopic(name)
    }
    return undefined
  }

  const checkRecords = (records: ReadonlyArray<OutgoingRecord>): BrokerError | undefined => {
    for (const record of records) {
      if (!topics.has(record.topic) && !isValidTopic(record.topic)) return invalidTopic(record.topic)
    }
    return undefined
  }

  const place = (records: ReadonlyArray<OutgoingRecord>): Placement => {
    const indexes: Array<number> = []
    const roundRobin = new Map<string, number>()
    for (const record of records) {
      const known = topics.get(record.topic)
      const n = known?.partitions.length ?? partitionCount
      if (record.key === null) {
        const next = roundRobin.get(record.topic) ?? known?.roundRobin ?? 0
        roundRobin.set(record.topic, next + 1)
        indexes.push(next % n)
      } else {
        indexes.push(partitionOf(record.key, n))
      }
    }
    return { indexes, roundRobin }
  }

  const appendOne = (partition: Partition, record: OutgoingRecord, timestamp: number): void => {
    partition.records.push({
      topic: record.topic,
      key: record.key,
      value: record.value,
      headers: { ...record.headers },
      partition: partition.index,
      offset: String(endOf(partition)),
      timestamp
    })
    if (retain !== undefined && partition.records.length >= 2 * retain) {
      // amortised O(1): drop the older half in one go
      const drop = partition.records.length - retain
      partition.records = partition.records.slice(drop)
      partition.base += drop
    }
  }

  const notify = (partition: Partition): void => {
    if (partition.waiters.size === 0) return
    const waiters = [...partition.waiters]
    partition.waiters.clear()
    for (const wake of waiters) wake()
  }

  const append = (records: ReadonlyArray<OutgoingRecord>, placement: Placement, timestamp: number): void => {
    const touched = new Set<Partition>()
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!
      const partition = topic(record.topic).partitions[placement.indexes[i]!]!
      appendOne(partition, record, timestamp)
      touched.add(partition)
    }
    for (const [name, next] of placement.roundRobin) topics.get(name)!.roundRobin = next
    for (const partition of touched) notify(partition)
  }

  const dropBelow = (partition: Partition, to: number): void => {
    if (to <= partition.base) return
    partition.records = partition.records.slice(to - partition.base)
    partition.base = to
  }

  return { topics, partitionCount, retain, create, topic, checkTopics, checkRecords, place, append, dropBelow }
}
