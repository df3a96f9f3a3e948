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
 * **Gotchas**
 *
 * Everything (logs and committed offsets) lives in memory and is lost when the process exits.
 * At-least-once delivery across restarts is the job of the layers above: the outbox republishes what
 * was not acknowledged and the inbox deduplicates. Logs are kept whole unless
 * `retainRecordsPerPartition` bounds them (a group lagging behind the retained window skips ahead,
 * like Kafka after retention deleted its position).
 *
 * @since 0.1.0
 */
import { Clock, Effect, Exit, FiberSet, Layer, Semaphore } from "effect"
import { MinosConfig } from "../config/MinosConfig.ts"
import { Broker, BrokerError, type BrokerShape, type ConsumeOptions, type DeliveredRecord, isValidTopic, type OutgoingRecord } from "./Broker.ts"

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
  maxBatch: 500
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

/**
 * Builds an empty in-process broker. Nothing needs closing: consumers live in the scopes of their
 * `consume` calls.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("MemoryBroker.make")(function*(options: MemoryOptions = {}) {
  const partitionCount = Math.max(1, Math.floor(options.partitions ?? defaults.partitions))
  const retryInitialMs = Math.max(0, options.retryInitialMs ?? defaults.retryInitialMs)
  const retryMaxMs = Math.max(retryInitialMs, options.retryMaxMs ?? defaults.retryMaxMs)
  const retain = options.retainRecordsPerPartition === undefined ? undefined : Math.max(1, Math.floor(options.retainRecordsPerPartition))

  const topics = new Map<string, Topic>()
  const groups = new Map<string, Group>()

  const topicUnsafe = (name: string): Topic => {
    let topic = topics.get(name)
    if (topic === undefined) {
      const partitions: Array<Partition> = []
      for (let index = 0; index < partitionCount; index++) {
        partitions.push({ topic: name, index, base: 0, records: [], waiters: new Set() })
      }
      topic = { name, partitions, roundRobin: 0 }
      topics.set(name, topic)
    }
    return topic
  }

  const checkTopics = (names: ReadonlyArray<string>): BrokerError | undefined => {
    for (const name of names) {
      if (!topics.has(name) && !isValidTopic(name)) return invalidTopic(name)
    }
    return undefined
  }

  const ensureTopics = Effect.fn("MemoryBroker.ensureTopics")(function*(names: ReadonlyArray<string>) {
    const bad = checkTopics(names)
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

  const publishNow = Effect.fnUntraced(function*(records: ReadonlyArray<OutgoingRecord>) {
    const bad = checkRecords(records)
    if (bad !== undefined) return yield* Effect.fail(bad)
    const timestamp = yield* Clock.currentTimeMillis
    // all appends happen in this synchronous block: a publish is atomic and ordered
    const touched = new Set<Partition>()
    for (const record of records) {
      const topic = topicUnsafe(record.topic)
      const n = topic.partitions.length
      const index = record.key === null ? topic.roundRobin++ % n : partitionOf(record.key, n)
      const partition = topic.partitions[index]!
      append(partition, record, timestamp)
      touched.add(partition)
    }
    for (const partition of touched) notify(partition)
  })

  // The hot path: a named span like every port method, but without `Effect.fn`'s two stack captures
  // per call, which cost more than the append itself.
  const publish = (records: ReadonlyArray<OutgoingRecord>): Effect.Effect<void, BrokerError> =>
    records.length === 0
      ? Effect.void
      : publishNow(records).pipe(Effect.withSpan("MemoryBroker.publish", undefined, { captureStackTrace: false }))

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
              if (Exit.isSuccess(exit) && slot.committed < next) slot.committed = next
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

    let group = groups.get(consumeOptions.group)
    if (group === undefined) {
      group = { name: consumeOptions.group, members: [], slots: new Map() }
      groups.set(group.name, group)
    }
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
    for (const topic of member.topics) {
      for (const partition of topic.partitions) {
        if (!group.slots.has(partition)) {
          group.slots.set(partition, {
            partition,
            committed: fromBeginning ? partition.base : endOf(partition),
            owner: undefined,
            lock: Semaphore.makeUnsafe(1)
          })
        }
      }
    }
    // Leaving runs before the FiberSet's finalizer (registered earlier): the partitions move first,
    // then the member's workers are interrupted, which releases the slot locks the new owners wait on.
    // Registered before joining, so an interruption in between cannot leave a ghost member behind.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        member.closed = true
        const at = group.members.indexOf(member)
        if (at >= 0) group.members.splice(at, 1)
        rebalance(group)
      })
    )
    group.members.push(member)
    rebalance(group)
  })

  return Broker.of({ publish, ensureTopics, consume, ping: Effect.void })
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer = (options?: MemoryOptions): Layer.Layer<Broker> => Layer.effect(Broker, make(options))

/**
 * The in-process broker the config names (`broker.backend: memory`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerFromConfig: Layer.Layer<Broker, never, MinosConfig> = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* MinosConfig
    if (config.broker.backend !== "memory") return yield* Effect.die(new Error("MemoryBroker.layerFromConfig: broker.backend is not memory"))
    return layer()
  })
)

export type { BrokerShape }
