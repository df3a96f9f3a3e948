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
 * - An ephemeral group is never persisted and is gone once its last member left.
 * - `publish` is all or nothing: a failure acknowledges no record.
 *
 * **Persistence** (`persistence: { path }`, what the runtime turns on for `broker.backend: memory`)
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
import { Clock, Effect, Layer, type Scope } from "effect"
import { Broker, BrokerError, type BrokerShape, type ConsumeOptions, type OutgoingRecord } from "../broker/Broker.ts"
import * as ConsumerGroups from "./internal/ConsumerGroups.ts"
import * as LogStore from "./internal/LogStore.ts"
import * as PartitionLog from "./internal/PartitionLog.ts"
import * as Partitioner from "./internal/Partitioner.ts"
import * as Retention from "./internal/Retention.ts"

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

/**
 * The partition of a keyed record among `partitions`: `toPositive(murmur2(utf8(key))) % partitions`,
 * Kafka's default partitioner, so both backends put a key on the same partition number.
 *
 * @category utils
 * @since 0.1.0
 */
export const partitionOf: (key: string, partitions: number) => number = Partitioner.partitionOf

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
  const retryInitialMs = Math.max(0, options.retryInitialMs ?? defaults.retryInitialMs)
  const log = PartitionLog.make({
    partitions: Math.max(1, Math.floor(options.partitions ?? defaults.partitions)),
    retain: options.retainRecordsPerPartition === undefined ? undefined : Math.max(1, Math.floor(options.retainRecordsPerPartition))
  })
  const persistence = options.persistence
  const store = persistence === undefined ? undefined : yield* LogStore.open(persistence.path)
  const runLog = Effect.runForkWith(yield* Effect.context<never>())
  const groups = ConsumerGroups.make({
    retryInitialMs,
    retryMaxMs: Math.max(retryInitialMs, options.retryMaxMs ?? defaults.retryMaxMs),
    concurrency: defaults.concurrency,
    maxBatch: defaults.maxBatch,
    journal: store === undefined ? undefined : LogStore.journal(store, (message, cause) => runLog(Effect.logWarning(message, cause)))
  })
  if (store !== undefined) {
    groups.restore(yield* LogStore.load(store, log, yield* Clock.currentTimeMillis))
    yield* Retention.run(store, log, groups, {
      retentionMs: Math.max(0, persistence?.retentionMs ?? defaults.retentionMs),
      intervalMs: Math.max(1, persistence?.trimIntervalMs ?? defaults.trimIntervalMs)
    })
  }

  const ensureTopics = Effect.fn("MemoryBroker.ensureTopics")(function*(names: ReadonlyArray<string>) {
    const bad = log.checkTopics(names) ?? (store === undefined ? undefined : LogStore.writeTopics(store, log, names))
    if (bad !== undefined) return yield* Effect.fail(bad)
    for (const name of names) log.topic(name)
  })

  const publishNow = Effect.fnUntraced(function*(records: ReadonlyArray<OutgoingRecord>) {
    const bad = log.checkRecords(records)
    if (bad !== undefined) return yield* Effect.fail(bad)
    const timestamp = yield* Clock.currentTimeMillis
    // placing, persisting and appending happen in this synchronous block: a publish is atomic and ordered
    const placement = log.place(records)
    if (store !== undefined) {
      const failed = LogStore.writePublish(store, log, records, placement, timestamp)
      if (failed !== undefined) return yield* Effect.fail(failed)
    }
    log.append(records, placement, timestamp)
  })

  // The hot path: a named span like every port method, but without `Effect.fn`'s two stack captures
  // per call, which cost more than the append itself.
  const publish = (records: ReadonlyArray<OutgoingRecord>): Effect.Effect<void, BrokerError> =>
    records.length === 0
      ? Effect.void
      : publishNow(records).pipe(Effect.withSpan("MemoryBroker.publish", undefined, { captureStackTrace: false }))

  const consume = Effect.fn("MemoryBroker.consume")(function*(consumeOptions: ConsumeOptions) {
    if (consumeOptions.group === "") {
      return yield* Effect.fail(new BrokerError({ reason: "Rejected", message: "consume needs a non-empty group name" }))
    }
    if (consumeOptions.topics.length === 0) {
      return yield* Effect.fail(new BrokerError({ reason: "Rejected", message: `consume (group ${consumeOptions.group}) needs at least one topic` }))
    }
    yield* ensureTopics(consumeOptions.topics)
    yield* groups.join(consumeOptions, [...new Set(consumeOptions.topics)].map((name) => log.topic(name)))
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
