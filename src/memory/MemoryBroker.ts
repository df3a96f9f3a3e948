/**
 * The `Broker` port in process: the embedded default (`broker.backend: memory`, what `npm start`
 * runs without Kafka), with Kafka's semantics inside one process.
 *
 * - Topics have `partitions` partitions (default 3), created on first use. A record's partition is
 *   chosen from its key with Kafka's own hash (murmur2, see {@link partitionOf}), so a key lands on
 *   the same partition number here and on Kafka; records without a key go round robin.
 * - Each partition is an append-only log with offsets 0, 1, 2, … Publishing appends and wakes the
 *   idle consumers of that partition at once (no polling).
 * - Consumer groups: the members of a group split the partitions of their topics; a member joining
 *   or leaving (its scope closing) rebalances the group. Each group sees every record; a partition's
 *   records go to `handle` in order, at most `maxBatch` at a time, and the group's committed offset
 *   advances only after `handle` succeeded. A failed or dead `handle` gets the same records again
 *   after a backoff; a member whose scope closes mid-batch leaves them to the next owner. When a
 *   partition moves to a member that joined, its batch in flight finishes first (no redelivery).
 *   A member handles up to `concurrency` partitions at once; one partition is strictly sequential.
 *   Handlers run on their own fibers, never inside the caller's `publish`.
 * - `fromBeginning: false` starts a group that has no offset yet at the end of the log, as of the
 *   moment `consume` joined: every record published after `consume` returned is delivered.
 *
 * **Persistence** (`persistence: { path }`, what `layerFromConfig` turns on)
 *
 * The same broker, with its state in an LMDB environment of its own (a folder), so records published
 * but not consumed yet, and each group's committed offsets, survive a restart:
 *
 * - `publish` writes the whole batch in ONE synchronous LMDB write transaction (records under
 *   `[topic, partition, offset]`, plus each partition's next offset) before it succeeds; if LMDB
 *   fails, `publish` fails with `Unavailable` and nothing is appended in memory either. So once the
 *   outbox relay saw `publish` succeed and deleted its rows, the records are on disk.
 * - A group's offset is written when it advances (after each handled batch; batched asynchronous
 *   writes, flushed when the layer closes): a crash may forget the last commits, and those records
 *   are delivered again (at least once, as on Kafka; the inbox deduplicates). A group's first offset
 *   (`fromBeginning`, or the end of the log) is written synchronously when it first joins.
 * - On start, topics (with their partition counts), logs and group offsets are loaded: each group
 *   continues where it committed.
 * - Retention: every `trimIntervalMs` (default 1 minute), a partition's records are deleted when they
 *   are below the committed offset of every group that consumes the topic AND older than
 *   `retentionMs` (default 7 days), so a group that appears later with `fromBeginning` still finds
 *   the recent history. Records of a topic no group consumes go once older than `retentionMs`. Like
 *   Kafka's offset retention, a group with no member for longer than `retentionMs` is forgotten (its
 *   offsets are deleted), so groups that never come back (the per-instance reply groups of earlier
 *   runs) do not hold the logs forever.
 *
 * **Gotchas**
 *
 * Without `persistence`, everything (logs and committed offsets) lives in memory and is lost when the
 * process exits. At-least-once delivery across restarts is then the job of the layers above: the
 * outbox republishes what was not acknowledged and the inbox deduplicates.
 *
 * Memory: the whole retained log is kept in memory, with or without persistence (persistence adds a
 * copy on disk; it does not page the log out). Logs are kept whole unless `retainRecordsPerPartition`
 * bounds them (a group lagging behind the retained window skips ahead, like Kafka after retention
 * deleted its position) or, with persistence, the retention above trims them.
 *
 * One broker per folder: the folder belongs to one broker of one process (a second open in the same
 * process is refused; two processes on one folder would corrupt each other's offsets).
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { Clock, Effect, Exit, FiberSet, Layer, type Scope, Semaphore } from "effect"
import { type Database, open, type RootDatabase } from "lmdb"
import { Broker, BrokerError, type BrokerShape, type ConsumeOptions, type DeliveredRecord, isValidTopic, type OutgoingRecord } from "../broker/Broker.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface MemoryOptions {
  /** Partitions of every topic (default 3, like the Kafka backend). */
  readonly partitions?: number
  /** First backoff before a failed batch is handed over again (default 100 ms); doubles per failure. */
  readonly retryInitialMs?: number
  /** Longest backoff between redeliveries of a failing batch (default 5 s). */
  readonly retryMaxMs?: number
  /**
   * Keep at least this many (and fewer than twice as many) of the newest records per partition
   * (default: keep all). Memory grows with the log otherwise, so long-running processes with busy
   * topics should set it.
   */
  readonly retainRecordsPerPartition?: number
  /** Keep the logs and group offsets on disk (see the module docs); absent: memory only. */
  readonly persistence?: PersistenceOptions | undefined
}

/**
 * @category models
 * @since 0.1.0
 */
export interface PersistenceOptions {
  /** The broker's own LMDB environment folder (created when missing), e.g. `./data/exam-broker`. */
  readonly path: string
  /**
   * Records stay at least this long, even once every group committed them (default 7 days); also how
   * long a group without members keeps its offsets.
   */
  readonly retentionMs?: number | undefined
  /** How often retention runs (default 1 minute). */
  readonly trimIntervalMs?: number | undefined
}

/**
 * @category defaults
 * @since 0.1.0
 */
export const defaults = {
  partitions: 3,
  retryInitialMs: 100,
  retryMaxMs: 5_000,
  concurrency: 4,
  maxBatch: 500,
  retentionMs: 7 * 24 * 60 * 60 * 1000,
  trimIntervalMs: 60_000
} as const

// ---------------------------------------------------------------------------------------------------
// partitioning: Kafka's murmur2 (org.apache.kafka.common.utils.Utils#murmur2, also kafkajs' default)

const M = 0x5bd1e995

/** murmur2 over bytes, `byteAt(i)` being the i-th byte (0-255) of `length`. */
const murmur2 = (length: number, byteAt: (i: number) => number): number => {
  let h = (0x9747b28c ^ length) | 0
  const length4 = length >>> 2
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4
    let k = byteAt(i4) | (byteAt(i4 + 1) << 8) | (byteAt(i4 + 2) << 16) | (byteAt(i4 + 3) << 24)
    k = Math.imul(k, M)
    k ^= k >>> 24
    k = Math.imul(k, M)
    h = Math.imul(h, M) ^ k
  }
  const tail = length & ~3
  const rest = length & 3
  if (rest === 3) h ^= byteAt(tail + 2) << 16
  if (rest >= 2) h ^= byteAt(tail + 1) << 8
  if (rest >= 1) {
    h ^= byteAt(tail)
    h = Math.imul(h, M)
  }
  h ^= h >>> 13
  h = Math.imul(h, M)
  h ^= h >>> 15
  return h
}

const encoder = new TextEncoder()

const isAscii = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false
  return true
}

const murmur2Utf8 = (key: string): number => {
  if (isAscii(key)) return murmur2(key.length, (i) => key.charCodeAt(i)) // UTF-8 of ASCII is itself: no copy
  const bytes = encoder.encode(key)
  return murmur2(bytes.length, (i) => bytes[i]!)
}

/**
 * The partition of a keyed record among `partitions`: `toPositive(murmur2(utf8(key))) % partitions`,
 * Kafka's default partitioner, so both backends put a key on the same partition number.
 *
 * @category utils
 * @since 0.1.0
 */
export const partitionOf = (key: string, partitions: number): number =>
  (murmur2Utf8(key) & 0x7fffffff) % partitions

// ---------------------------------------------------------------------------------------------------
// state

interface Partition {
  readonly topic: string
  readonly index: number
  /** Offset of `records[0]` (above 0 once retention dropped the head). */
  base: number
  records: Array<DeliveredRecord>
  /** Idle workers to wake on the next append. */
  readonly waiters: Set<() => void>
}

interface Topic {
  readonly name: string
  readonly partitions: ReadonlyArray<Partition>
  roundRobin: number
}

/** One partition as seen by one group. */
interface Slot {
  readonly partition: Partition
  /** The next offset the group has not handled yet. */
  committed: number
  owner: Member | undefined
  /** Held while a batch of this partition is being handled: a new owner waits for the old one. */
  readonly lock: Semaphore.Semaphore
}

interface Group {
  readonly name: string
  /** In join order; the order breaks ties in the assignment. */
  readonly members: Array<Member>
  readonly slots: Map<Partition, Slot>
  /** When the group last lost its last member (undefined while it has members). */
  idleSince: number | undefined
}

interface Worker {
  revoked: boolean
  /** Set while the worker waits for records; calling it wakes the worker. */
  wake: (() => void) | undefined
}

interface Member {
  readonly group: Group
  readonly topics: ReadonlyArray<Topic>
  readonly options: ConsumeOptions
  readonly maxBatch: number
  /** Bounds the partitions handled at once; absent when `concurrency` covers all it could own. */
  readonly permits: Semaphore.Semaphore | undefined
  readonly workers: Map<Slot, Worker>
  readonly run: (effect: Effect.Effect<void>) => unknown
  closed: boolean
}

const endOf = (p: Partition): number => p.base + p.records.length

const invalidTopic = (topic: string) =>
  new BrokerError({ reason: "InvalidTopic", message: `Invalid topic name ${JSON.stringify(topic)}: use 1-249 of [A-Za-z0-9._-]` })

/**
 * Waits until the slot's partition has a record past the group's offset, or the worker is revoked.
 * Checked again inside the registration, so an append between the caller's check and the wait
 * cannot be missed.
 */
const idle = (slot: Slot, worker: Worker): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const partition = slot.partition
    if (worker.revoked || slot.committed < endOf(partition)) return resume(Effect.void)
    let done = false
    const wake = () => {
      if (done) return
      done = true
      partition.waiters.delete(wake)
      if (worker.wake === wake) worker.wake = undefined
      // `resume` runs the fiber on the caller's stack; yielding first moves it to the scheduler, so a
      // publisher never runs handlers inline (no re-entrancy) and records published meanwhile batch up
      resume(Effect.yieldNow)
    }
    partition.waiters.add(wake)
    worker.wake = wake
    return Effect.sync(() => {
      done = true
      partition.waiters.delete(wake)
      if (worker.wake === wake) worker.wake = undefined
    })
  })

// ---------------------------------------------------------------------------------------------------
// persistence: the broker's own LMDB environment
//
// | db | key | value |
// | --- | --- | --- |
// | `topics` | topic | partition count |
// | `ends` | `[topic, partition]` | the partition's next offset |
// | `records` | `[topic, partition, offset]` | {@link StoredRecord} |
// | `offsets` | `[group, topic, partition]` | the group's committed offset (next to handle) |
// | `idle` | group | since when the group has no member (absent while it has members) |

interface StoredRecord {
  readonly key: string | null
  readonly value: string
  readonly headers: Readonly<Record<string, string>>
  readonly timestamp: number
}

type RecordKey = [string, number, number]
type PartitionKey = [string, number]
type OffsetKey = [string, string, number]

interface Store {
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

const openStore = (path: string): Effect.Effect<Store, BrokerError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const folder = nodePath.resolve(path)
      if (openFolders.has(folder)) {
        return Effect.fail(new BrokerError({ reason: "Rejected", message: `MemoryBroker: the folder ${folder} is already open in this process` }))
      }
      return Effect.try({
        try: (): Store => {
          fs.mkdirSync(folder, { recursive: true })
          // `noSubdir: false`: a folder even when its name has a dot
          const root = open({ path: folder, maxDbs: 8, noSubdir: false })
          try {
            const store: Store = {
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

const recordOf = (topic: string, partition: number, offset: number, stored: StoredRecord): DeliveredRecord => {
  if (
    typeof stored !== "object" || stored === null || typeof stored.value !== "string" || typeof stored.timestamp !== "number" ||
    (stored.key !== null && typeof stored.key !== "string") || typeof stored.headers !== "object" || stored.headers === null
  ) throw new CorruptData(`record ${topic}[${partition}]@${offset} is not a record`)
  return { topic, key: stored.key, value: stored.value, headers: stored.headers, partition, offset: String(offset), timestamp: stored.timestamp }
}

// ---------------------------------------------------------------------------------------------------

/** Where each record of a publish goes, decided before anything is written. */
interface Placement {
  /** The partition index of each record, in order. */
  readonly indexes: Array<number>
  /** Each keyless topic's round-robin counter after the publish. */
  readonly roundRobin: Map<string, number>
}

type Make = {
  /**
   * Builds an empty in-process broker. Nothing needs closing: consumers live in the scopes of their
   * `consume` calls.
   */
  (options?: MemoryOptions & { readonly persistence?: undefined }): Effect.Effect<BrokerShape>
  /** Builds a broker; with `persistence`, opens (and loads) its folder, closed with the scope. */
  (options: MemoryOptions): Effect.Effect<BrokerShape, BrokerError, Scope.Scope>
}

const makeBroker = Effect.fn("MemoryBroker.make")(function*(options: MemoryOptions = {}) {
  const partitionCount = Math.max(1, Math.floor(options.partitions ?? defaults.partitions))
  const retryInitialMs = Math.max(0, options.retryInitialMs ?? defaults.retryInitialMs)
  const retryMaxMs = Math.max(retryInitialMs, options.retryMaxMs ?? defaults.retryMaxMs)
  const retain = options.retainRecordsPerPartition === undefined ? undefined : Math.max(1, Math.floor(options.retainRecordsPerPartition))

  const topics = new Map<string, Topic>()
  const groups = new Map<string, Group>()

  const newTopic = (name: string, count: number): Topic => {
    const partitions: Array<Partition> = []
    for (let index = 0; index < count; index++) {
      partitions.push({ topic: name, index, base: 0, records: [], waiters: new Set() })
    }
    const topic: Topic = { name, partitions, roundRobin: 0 }
    topics.set(name, topic)
    return topic
  }

  const topicUnsafe = (name: string): Topic => topics.get(name) ?? newTopic(name, partitionCount)

  // --- persistence ---------------------------------------------------------------------------------

  const persistence = options.persistence
  const store: Store | undefined = persistence === undefined ? undefined : yield* openStore(persistence.path)
  const retentionMs = Math.max(0, persistence?.retentionMs ?? defaults.retentionMs)
  const trimIntervalMs = Math.max(1, persistence?.trimIntervalMs ?? defaults.trimIntervalMs)
  const context = yield* Effect.context<never>()
  const runLog = Effect.runForkWith(context)

  /** Runs `op` in one synchronous LMDB write transaction; a failure becomes `Unavailable`. */
  const writeSync = (s: Store, what: string, op: () => void): BrokerError | undefined => {
    if (s.closed) return new BrokerError({ reason: "Unavailable", message: `MemoryBroker: ${what}: the broker is closed` })
    try {
      s.root.transactionSync(op)
      return undefined
    } catch (cause) {
      return unavailable(what, cause)
    }
  }

  if (store !== undefined) {
    const now = yield* Clock.currentTimeMillis
    yield* Effect.try({
      try: () => {
        for (const { key: name, value: count } of store.topics.getRange()) {
          if (typeof name !== "string" || !Number.isInteger(count) || count < 1) throw new CorruptData(`topic ${String(name)} has ${String(count)} partitions`)
          for (const partition of newTopic(name, count).partitions) {
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
        for (const { key: [name, topicName, index], value: committed } of store.offsets.getRange()) {
          const partition = topics.get(topicName)?.partitions[index]
          if (partition === undefined) continue
          if (!Number.isInteger(committed)) throw new CorruptData(`group ${name} has offset ${String(committed)} on ${topicName}[${index}]`)
          let group = groups.get(name)
          if (group === undefined) {
            group = { name, members: [], slots: new Map(), idleSince: undefined }
            groups.set(name, group)
          }
          group.slots.set(partition, { partition, committed, owner: undefined, lock: Semaphore.makeUnsafe(1) })
        }
        // a group that had members when the process stopped is idle from now on
        store.root.transactionSync(() => {
          for (const group of groups.values()) {
            const since = store.idle.get(group.name)
            group.idleSince = typeof since === "number" ? since : now
            if (since === undefined) store.idle.putSync(group.name, now)
          }
        })
      },
      catch: (cause) =>
        cause instanceof CorruptData
          ? new BrokerError({ reason: "Unknown", message: `MemoryBroker: the log at ${store.path} is corrupt: ${cause.message}`, cause })
          : unavailable(`cannot load the log at ${store.path}`, cause)
    })
  }

  /** Persists the topics that do not exist yet (with persistence). */
  const persistTopics = (names: ReadonlyArray<string>): BrokerError | undefined => {
    if (store === undefined) return undefined
    const fresh = names.filter((name) => !topics.has(name))
    if (fresh.length === 0) return undefined
    return writeSync(store, "cannot create topics", () => {
      for (const name of fresh) store.topics.putSync(name, partitionCount)
    })
  }

  const checkTopics = (names: ReadonlyArray<string>): BrokerError | undefined => {
    for (const name of names) {
      if (!topics.has(name) && !isValidTopic(name)) return invalidTopic(name)
    }
    return undefined
  }

  const ensureTopics = Effect.fn("MemoryBroker.ensureTopics")(function*(names: ReadonlyArray<string>) {
    const bad = checkTopics(names) ?? persistTopics(names)
    if (bad !== undefined) return yield* Effect.fail(bad)
    for (const name of names) topicUnsafe(name)
  })

  const append = (partition: Partition, record: OutgoingRecord, timestamp: number): void => {
    const offset = endOf(partition)
    partition.records.push({
      topic: record.topic,
      key: record.key,
      value: record.value,
      headers: { ...record.headers },
      partition: partition.index,
      offset: String(offset),
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
      const topic = topics.get(record.topic)
      const n = topic?.partitions.length ?? partitionCount
      if (record.key === null) {
        const next = roundRobin.get(record.topic) ?? topic?.roundRobin ?? 0
        roundRobin.set(record.topic, next + 1)
        indexes.push(next % n)
      } else {
        indexes.push(partitionOf(record.key, n))
      }
    }
    return { indexes, roundRobin }
  }

  /**
   * Writes a publish to LMDB exactly as `append` will lay it out in memory (same offsets, same
   * retention drops), in one write transaction.
   */
  const persistPublish = (s: Store, records: ReadonlyArray<OutgoingRecord>, placement: Placement, timestamp: number) =>
    writeSync(s, "cannot write the published records", () => {
      const fresh = new Set<string>()
      const state = new Map<string, { topic: string; index: number; base: number; length: number }>()
      for (let i = 0; i < records.length; i++) {
        const record = records[i]!
        const index = placement.indexes[i]!
        if (!topics.has(record.topic) && !fresh.has(record.topic)) {
          fresh.add(record.topic)
          s.topics.putSync(record.topic, partitionCount)
        }
        const id = `${record.topic}\u0000${index}`
        let p = state.get(id)
        if (p === undefined) {
          const partition = topics.get(record.topic)?.partitions[index]
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

  const publishNow = Effect.fnUntraced(function*(records: ReadonlyArray<OutgoingRecord>) {
    const bad = checkRecords(records)
    if (bad !== undefined) return yield* Effect.fail(bad)
    const timestamp = yield* Clock.currentTimeMillis
    // placing, persisting and appending happen in this synchronous block: a publish is atomic and ordered
    const placement = place(records)
    if (store !== undefined) {
      const failed = persistPublish(store, records, placement, timestamp)
      if (failed !== undefined) return yield* Effect.fail(failed)
    }
    const touched = new Set<Partition>()
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!
      const partition = topicUnsafe(record.topic).partitions[placement.indexes[i]!]!
      append(partition, record, timestamp)
      touched.add(partition)
    }
    for (const [name, next] of placement.roundRobin) topics.get(name)!.roundRobin = next
    for (const partition of touched) notify(partition)
  })

  // The hot path: a named span like every port method, but without `Effect.fn`'s two stack captures
  // per call, which cost more than the append itself.
  const publish = (records: ReadonlyArray<OutgoingRecord>): Effect.Effect<void, BrokerError> =>
    records.length === 0
      ? Effect.void
      : publishNow(records).pipe(Effect.withSpan("MemoryBroker.publish", undefined, { captureStackTrace: false }))

  /** Writes a group's advanced offset; batched asynchronous write (a lost one means a redelivery). */
  const persistCommit = (group: Group, slot: Slot): void => {
    if (store === undefined || store.closed || groups.get(group.name) !== group) return
    const partition = slot.partition
    store.offsets.put([group.name, partition.topic, partition.index], slot.committed).then(undefined, (cause: unknown) => {
      runLog(Effect.logWarning(
        `MemoryBroker: cannot write the offset of group ${group.name} on ${partition.topic}[${partition.index}]; ` +
          `after a restart its records from the last written offset are delivered again`,
        cause
      ))
    })
  }

  // --- retention (with persistence) ----------------------------------------------------------------

  /**
   * Forgets the groups without members for longer than `retentionMs`, then deletes each partition's
   * records that every remaining group committed and that are older than `retentionMs`.
   */
  const trim = (s: Store) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const expired: Array<Group> = []
      const lowest = new Map<Partition, number>()
      for (const group of groups.values()) {
        if (group.members.length === 0 && group.idleSince !== undefined && now - group.idleSince > retentionMs) {
          expired.push(group)
          continue
        }
        for (const slot of group.slots.values()) {
          const low = lowest.get(slot.partition)
          if (low === undefined || slot.committed < low) lowest.set(slot.partition, slot.committed)
        }
      }
      const cutoff = now - retentionMs
      const drops: Array<{ readonly partition: Partition; readonly to: number }> = []
      for (const topic of topics.values()) {
        for (const partition of topic.partitions) {
          const limit = Math.min(lowest.get(partition) ?? Number.POSITIVE_INFINITY, endOf(partition))
          let to = partition.base
          while (to < limit && partition.records[to - partition.base]!.timestamp < cutoff) to++
          if (to > partition.base) drops.push({ partition, to })
        }
      }
      if (expired.length === 0 && drops.length === 0) return Effect.void
      const failed = writeSync(s, "cannot apply retention", () => {
        for (const group of expired) {
          for (const slot of group.slots.values()) s.offsets.removeSync([group.name, slot.partition.topic, slot.partition.index])
          s.idle.removeSync(group.name)
        }
        for (const { partition, to } of drops) {
          for (let offset = partition.base; offset < to; offset++) s.records.removeSync([partition.topic, partition.index, offset])
        }
      })
      if (failed !== undefined) return s.closed ? Effect.void : Effect.logWarning(`${failed.message}; retrying in ${trimIntervalMs} ms`)
      for (const group of expired) groups.delete(group.name)
      for (const { partition, to } of drops) {
        partition.records = partition.records.slice(to - partition.base)
        partition.base = to
      }
      return Effect.void
    })

  if (store !== undefined) {
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(trimIntervalMs), trim(store))))
  }

  // --- consumer groups -----------------------------------------------------------------------------

  const backoff = (failures: number): number => Math.min(retryMaxMs, retryInitialMs * 2 ** Math.min(failures - 1, 30))

  /** Handles one batch of `slot` if `worker` still owns it; "idle" when there was nothing to do. */
  const handleNext = (member: Member, slot: Slot, worker: Worker) =>
    Effect.suspend((): Effect.Effect<Exit.Exit<void, unknown> | "idle"> => {
      if (worker.revoked || member.closed) return Effect.succeed("idle")
      const partition = slot.partition
      if (slot.committed < partition.base) slot.committed = partition.base // retention dropped what the group had not read
      const from = slot.committed - partition.base
      if (from >= partition.records.length) return Effect.succeed("idle")
      const batch = partition.records.slice(from, from + member.maxBatch)
      const next = slot.committed + batch.length
      const handle = Effect.suspend(() => member.options.handle(batch)).pipe(
        Effect.withSpan(
          "MemoryBroker.handle",
          { attributes: { group: member.group.name, topic: partition.topic, partition: partition.index, records: batch.length } },
          { captureStackTrace: false } // it would point here, not at the handler
        )
      )
      // interruptible while handling; once `handle` succeeded, the commit is not lost to an interruption
      return Effect.uninterruptibleMask((restore) =>
        restore(handle).pipe(
          Effect.exit,
          Effect.tap((exit) =>
            Effect.sync(() => {
              if (Exit.isSuccess(exit) && slot.committed < next) {
                slot.committed = next
                persistCommit(member.group, slot)
              }
            })
          )
        )
      )
    })

  /** The loop of one partition of one member; ends when the partition is revoked. */
  const work = (member: Member, slot: Slot, worker: Worker): Effect.Effect<void> =>
    Effect.gen(function*() {
      // forked from inside a rebalance: let the rebalance finish first
      yield* Effect.yieldNow
      let failures = 0
      while (true) {
        // the only exit, decided and recorded in one synchronous step (see `assign`)
        if (worker.revoked || member.closed) {
          if (member.workers.get(slot) === worker) member.workers.delete(slot)
          return
        }
        if (slot.committed >= endOf(slot.partition)) {
          yield* idle(slot, worker)
          continue
        }
        const locked = slot.lock.withPermits(1)(handleNext(member, slot, worker))
        const outcome = yield* (member.permits === undefined ? locked : member.permits.withPermits(1)(locked))
        if (outcome === "idle" || Exit.isSuccess(outcome)) {
          failures = 0
          continue
        }
        failures++
        const delay = backoff(failures)
        yield* Effect.logWarning(
          `MemoryBroker: handle failed for ${slot.partition.topic}[${slot.partition.index}] in group ${member.group.name} ` +
            `(attempt ${failures}); the records are delivered again in ${delay} ms`,
          outcome.cause
        )
        yield* Effect.sleep(delay)
      }
    })

  const start = (member: Member, slot: Slot): void => {
    const worker: Worker = { revoked: false, wake: undefined }
    member.workers.set(slot, worker)
    member.run(work(member, slot, worker))
  }

  /** Moves a slot to its new owner. Synchronous: called only from `rebalance`. */
  const assign = (slot: Slot, owner: Member | undefined): void => {
    const previous = slot.owner
    if (previous === owner) return
    slot.owner = owner
    if (previous !== undefined && !previous.closed) {
      const worker = previous.workers.get(slot)
      if (worker !== undefined) {
        // finishes its batch in flight (the new owner waits on the slot lock), then stops
        worker.revoked = true
        worker.wake?.()
      }
    }
    if (owner !== undefined) {
      const worker = owner.workers.get(slot)
      if (worker !== undefined) worker.revoked = false // got it back before its old worker stopped
      else start(owner, slot)
    }
  }

  /**
   * Deals the partitions of every subscribed topic to the members subscribed to it: each partition
   * goes to the least loaded subscriber, ties to the earliest joined. Synchronous, so the group is
   * never seen half-rebalanced.
   */
  const rebalance = (group: Group): void => {
    const load = new Map<Member, number>()
    for (const member of group.members) load.set(member, 0)
    const assigned = new Set<Slot>()
    const subscribed = new Set<Topic>()
    for (const member of group.members) for (const topic of member.topics) subscribed.add(topic)
    for (const topic of [...subscribed].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const members = group.members.filter((m) => m.topics.includes(topic))
      for (const partition of topic.partitions) {
        const slot = group.slots.get(partition)!
        let best: Member | undefined
        for (const m of members) if (best === undefined || load.get(m)! < load.get(best)!) best = m
        if (best !== undefined) load.set(best, load.get(best)! + 1)
        assign(slot, best)
        assigned.add(slot)
      }
    }
    for (const slot of group.slots.values()) if (!assigned.has(slot)) assign(slot, undefined)
  }

  const consume = Effect.fn("MemoryBroker.consume")(function*(consumeOptions: ConsumeOptions) {
    if (consumeOptions.group === "") {
      return yield* Effect.fail(new BrokerError({ reason: "Rejected", message: "consume needs a non-empty group name" }))
    }
    if (consumeOptions.topics.length === 0) {
      return yield* Effect.fail(new BrokerError({ reason: "Rejected", message: `consume (group ${consumeOptions.group}) needs at least one topic` }))
    }
    yield* ensureTopics(consumeOptions.topics)
    const run = yield* FiberSet.makeRuntime<never, void, never>()
    const concurrency = Math.max(1, Math.floor(consumeOptions.concurrency ?? defaults.concurrency))
    const memberTopics = [...new Set(consumeOptions.topics)].map((name) => topics.get(name)!)
    const mostPartitions = memberTopics.reduce((n, topic) => n + topic.partitions.length, 0)
    const permits = concurrency < mostPartitions ? yield* Semaphore.make(concurrency) : undefined
    const fromBeginning = consumeOptions.fromBeginning ?? true

    // the group's first offset on each partition it has none for; with persistence, written before
    // joining, so a restart continues from there (not from wherever the log ends by then)
    const name = consumeOptions.group
    const existing = groups.get(name)
    const fresh: Array<Slot> = []
    for (const topic of memberTopics) {
      for (const partition of topic.partitions) {
        if (existing?.slots.has(partition) !== true) {
          fresh.push({ partition, committed: fromBeginning ? partition.base : endOf(partition), owner: undefined, lock: Semaphore.makeUnsafe(1) })
        }
      }
    }
    if (store !== undefined && (fresh.length > 0 || existing === undefined || existing.members.length === 0)) {
      const failed = writeSync(store, `cannot register group ${name}`, () => {
        for (const slot of fresh) store.offsets.putSync([name, slot.partition.topic, slot.partition.index], slot.committed)
        store.idle.removeSync(name)
      })
      if (failed !== undefined) return yield* Effect.fail(failed)
    }
    let group = existing
    if (group === undefined) {
      group = { name, members: [], slots: new Map(), idleSince: undefined }
      groups.set(name, group)
    }
    for (const slot of fresh) group.slots.set(slot.partition, slot)
    const member: Member = {
      group,
      topics: memberTopics,
      options: consumeOptions,
      maxBatch: Math.max(1, Math.floor(consumeOptions.maxBatch ?? defaults.maxBatch)),
      permits,
      workers: new Map(),
      run: (effect) => run(effect),
      closed: false
    }
    // Leaving runs before the FiberSet's finalizer (registered earlier): the partitions move first,
    // then the member's workers are interrupted, which releases the slot locks the new owners wait on.
    // Registered before joining, so an interruption in between cannot leave a ghost member behind.
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.suspend(() => {
          member.closed = true
          const at = group.members.indexOf(member)
          if (at >= 0) group.members.splice(at, 1)
          rebalance(group)
          if (group.members.length > 0) return Effect.void
          group.idleSince = now
          if (store === undefined || store.closed || groups.get(group.name) !== group) return Effect.void
          const failed = writeSync(store, `cannot mark group ${group.name} idle`, () => store.idle.putSync(group.name, now))
          return failed === undefined ? Effect.void : Effect.logWarning(failed.message)
        }))
    )
    group.members.push(member)
    group.idleSince = undefined
    rebalance(group)
  })

  return Broker.of({ publish, ensureTopics, consume, ping: Effect.void })
})

/**
 * Builds an in-process broker: empty, or with `persistence` loaded from its folder (closed when the
 * scope closes, with the retention fiber).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make: Make = makeBroker as Make

type MakeLayer = {
  (options?: MemoryOptions & { readonly persistence?: undefined }): Layer.Layer<Broker>
  (options: MemoryOptions): Layer.Layer<Broker, BrokerError>
}

/**
 * The broker as a layer; with `persistence`, its folder is opened and loaded when the layer is
 * built and closed when it is released.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: MakeLayer = ((options?: MemoryOptions) => Layer.effect(Broker, makeBroker(options))) as MakeLayer

export type { BrokerShape }
