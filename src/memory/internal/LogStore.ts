/**
 * The in-process broker's own LMDB environment: its topics, partition logs and group offsets, so
 * what was published and not consumed yet survives a restart.
 *
 * | db | key | value |
 * | --- | --- | --- |
 * | `topics` | topic | partition count |
 * | `ends` | `[topic, partition]` | the partition's next offset |
 * | `records` | `[topic, partition, offset]` | {@link StoredRecord} |
 * | `offsets` | `[group, topic, partition]` | the group's committed offset (next to handle) |
 * | `idle` | group | since when the group has no member (absent while it has members) |
 *
 * Writes that a caller waits for (publish, topic creation, a group joining) are synchronous write
 * transactions; offset commits are LMDB's batched asynchronous writes, awaited when the store closes.
 *
 * @internal
 */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { Effect, type Scope } from "effect"
import { type Database, open as openLmdb, type RootDatabase } from "lmdb"
import { BrokerError, type DeliveredRecord, type OutgoingRecord } from "../../broker/Broker.ts"
import type { GroupJournal, RestoredGroup } from "./ConsumerGroups.ts"
import type { Partition, PartitionLog, Placement } from "./PartitionLog.ts"

interface StoredRecord {
  readonly key: string | null
  readonly value: string
  readonly headers: Readonly<Record<string, string>>
  readonly timestamp: number
}

type RecordKey = [string, number, number]
type PartitionKey = [string, number]
type OffsetKey = [string, string, number]

export interface LogStore {
  readonly path: string
  readonly root: RootDatabase
  readonly topics: Database<number, string>
  readonly ends: Database<number, PartitionKey>
  readonly records: Database<StoredRecord, RecordKey>
  readonly offsets: Database<number, OffsetKey>
  readonly idle: Database<number, string>
  /** Set when the layer closed: later writes are skipped (or fail, for `publish`). */
  closed: boolean
}

/** A stored value that does not have the shape this code wrote. */
class CorruptData extends Error {}

const describeCause = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const unavailable = (what: string, cause: unknown) =>
  new BrokerError({ reason: "Unavailable", message: `MemoryBroker: ${what}: ${describeCause(cause)}`, cause })

/** Folders open in this process: a second broker on one folder would overwrite the first one's offsets. */
const openFolders = new Set<string>()

/** Opens (creating it when missing) the folder, closed with the scope after the pending commits. */
export const open = (path: string): Effect.Effect<LogStore, BrokerError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const folder = nodePath.resolve(path)
      if (openFolders.has(folder)) {
        return Effect.fail(new BrokerError({ reason: "Rejected", message: `MemoryBroker: the folder ${folder} is already open in this process` }))
      }
      return Effect.try({
        try: (): LogStore => {
          fs.mkdirSync(folder, { recursive: true })
          // `noSubdir: false`: a folder even when its name has a dot
          const root = openLmdb({ path: folder, maxDbs: 8, noSubdir: false })
          try {
            const store: LogStore = {
              path: folder,
              root,
              topics: root.openDB<number, string>({ name: "topics" }),
              ends: root.openDB<number, PartitionKey>({ name: "ends" }),
              records: root.openDB<StoredRecord, RecordKey>({ name: "records" }),
              offsets: root.openDB<number, OffsetKey>({ name: "offsets" }),
              idle: root.openDB<number, string>({ name: "idle" }),
              closed: false
            }
            openFolders.add(folder)
            return store
          } catch (cause) {
            void root.close().catch(() => undefined)
            throw cause
          }
        },
        catch: (cause) => unavailable(`cannot open the LMDB environment at ${folder}`, cause)
      })
    }),
    (store) =>
      Effect.promise(async () => {
        store.closed = true
        try {
          await store.root.committed // the group offsets written asynchronously
          await store.root.close()
        } catch {
          // closing is best effort: what was committed is on disk
        } finally {
          openFolders.delete(store.path)
        }
      })
  )

/** Runs `op` in one synchronous LMDB write transaction; a failure becomes `Unavailable`. */
export const writeSync = (s: LogStore, what: string, op: () => void): BrokerError | undefined => {
  if (s.closed) return new BrokerError({ reason: "Unavailable", message: `MemoryBroker: ${what}: the broker is closed` })
  try {
    s.root.transactionSync(op)
    return undefined
  } catch (cause) {
    return unavailable(what, cause)
  }
}

const recordOf = (topic: string, partition: number, offset: number, stored: StoredRecord): DeliveredRecord => {
  if (
    typeof stored !== "object" || stored === null || typeof stored.value !== "string" || typeof stored.timestamp !== "number" ||
    (stored.key !== null && typeof stored.key !== "string") || typeof stored.headers !== "object" || stored.headers === null
  ) throw new CorruptData(`record ${topic}[${partition}]@${offset} is not a record`)
  return { topic, key: stored.key, value: stored.value, headers: stored.headers, partition, offset: String(offset), timestamp: stored.timestamp }
}

/**
 * Loads the topics and their logs into `log` and returns the groups with their offsets. A group
 * that had members when the process stopped is idle from `now` on (and marked so on disk).
 */
export const load = (store: LogStore, log: PartitionLog, now: number): Effect.Effect<Array<RestoredGroup>, BrokerError> =>
  Effect.try({
    try: () => {
      for (const { key: name, value: count } of store.topics.getRange()) {
        if (typeof name !== "string" || !Number.isInteger(count) || count < 1) throw new CorruptData(`topic ${String(name)} has ${String(count)} partitions`)
        for (const partition of log.create(name, count).partitions) {
          const end = store.ends.get([name, partition.index]) ?? 0
          let next: number | undefined
          for (const { key, value } of store.records.getRange({ start: [name, partition.index, 0], end: [name, partition.index, Number.MAX_SAFE_INTEGER] })) {
            const offset = key[2]
            if (next === undefined) partition.base = next = offset
            if (offset !== next) throw new CorruptData(`${name}[${partition.index}] misses offset ${next}`)
            partition.records.push(recordOf(name, partition.index, offset, value))
            next++
          }
          if (next === undefined) partition.base = end
          else if (next !== end) throw new CorruptData(`${name}[${partition.index}] ends at ${next - 1}, its next offset is ${end}`)
        }
      }
      const offsets = new Map<string, Array<{ partition: Partition; committed: number }>>()
      for (const { key: [name, topicName, index], value: committed } of store.offsets.getRange()) {
        const partition = log.topics.get(topicName)?.partitions[index]
        if (partition === undefined) continue
        if (!Number.isInteger(committed)) throw new CorruptData(`group ${name} has offset ${String(committed)} on ${topicName}[${index}]`)
        let group = offsets.get(name)
        if (group === undefined) offsets.set(name, group = [])
        group.push({ partition, committed })
      }
      const groups: Array<RestoredGroup> = []
      store.root.transactionSync(() => {
        for (const [name, slots] of offsets) {
          const since = store.idle.get(name)
          groups.push({ name, offsets: slots, idleSince: typeof since === "number" ? since : now })
          if (since === undefined) store.idle.putSync(name, now)
        }
      })
      return groups
    },
    catch: (cause) =>
      cause instanceof CorruptData
        ? new BrokerError({ reason: "Unknown", message: `MemoryBroker: the log at ${store.path} is corrupt: ${cause.message}`, cause })
        : unavailable(`cannot load the log at ${store.path}`, cause)
  })

/** Persists the topics of `names` that `log` does not have yet, with its partition count. */
export const writeTopics = (s: LogStore, log: PartitionLog, names: ReadonlyArray<string>): BrokerError | undefined => {
  const fresh = names.filter((name) => !log.topics.has(name))
  if (fresh.length === 0) return undefined
  return writeSync(s, "cannot create topics", () => {
    for (const name of fresh) s.topics.putSync(name, log.partitionCount)
  })
}

/**
 * Writes a placed publish exactly as `log.append` will lay it out in memory (same offsets, same
 * retention drops), in one write transaction.
 */
export const writePublish = (s: LogStore, log: PartitionLog, records: ReadonlyArray<OutgoingRecord>, placement: Placement, timestamp: number) =>
  writeSync(s, "cannot write the published records", () => {
    const { retain } = log
    const fresh = new Set<string>()
    const state = new Map<string, { topic: string; index: number; base: number; length: number }>()
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!
      const index = placement.indexes[i]!
      if (!log.topics.has(record.topic) && !fresh.has(record.topic)) {
        fresh.add(record.topic)
        s.topics.putSync(record.topic, log.partitionCount)
      }
      const id = `${record.topic}\u0000${index}`
      let p = state.get(id)
      if (p === undefined) {
        const partition = log.topics.get(record.topic)?.partitions[index]
        p = { topic: record.topic, index, base: partition?.base ?? 0, length: partition?.records.length ?? 0 }
        state.set(id, p)
      }
      s.records.putSync([record.topic, index, p.base + p.length], { key: record.key, value: record.value, headers: { ...record.headers }, timestamp })
      p.length++
      if (retain !== undefined && p.length >= 2 * retain) {
        const drop = p.length - retain
        for (let offset = p.base; offset < p.base + drop; offset++) s.records.removeSync([record.topic, index, offset])
        p.base += drop
        p.length = retain
      }
    }
    for (const p of state.values()) s.ends.putSync([p.topic, p.index], p.base + p.length)
  })

/** The groups' side of the store; `warn` reports a commit that could not be written. */
export const journal = (s: LogStore, warn: (message: string, cause: unknown) => void): GroupJournal => ({
  register: (group, fresh) =>
    writeSync(s, `cannot register group ${group}`, () => {
      for (const slot of fresh) s.offsets.putSync([group, slot.partition.topic, slot.partition.index], slot.committed)
      s.idle.removeSync(group)
    }),
  commit: (group, slot) => {
    if (s.closed) return
    const partition = slot.partition
    s.offsets.put([group, partition.topic, partition.index], slot.committed).then(undefined, (cause: unknown) =>
      warn(
        `MemoryBroker: cannot write the offset of group ${group} on ${partition.topic}[${partition.index}]; ` +
          `after a restart its records from the last written offset are delivered again`,
        cause
      )
    )
  },
  idle: (group, now) => {
    if (s.closed) return Effect.void
    const failed = writeSync(s, `cannot mark group ${group} idle`, () => s.idle.putSync(group, now))
    return failed === undefined ? Effect.void : Effect.logWarning(failed.message)
  }
})

/** Deletes forgotten groups (their offsets and idle mark) and the records below each drop. */
export const writeRetention = (
  s: LogStore,
  expired: ReadonlyArray<{ readonly name: string; readonly partitions: Iterable<Partition> }>,
  drops: ReadonlyArray<{ readonly partition: Partition; readonly to: number }>
): BrokerError | undefined =>
  writeSync(s, "cannot apply retention", () => {
    for (const group of expired) {
      for (const partition of group.partitions) s.offsets.removeSync([group.name, partition.topic, partition.index])
      s.idle.removeSync(group.name)
    }
    for (const { partition, to } of drops) {
      for (let offset = partition.base; offset < to; offset++) s.records.removeSync([partition.topic, partition.index, offset])
    }
  })
