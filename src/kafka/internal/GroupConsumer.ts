/**
 * One `Broker.consume` on @platformatic/kafka: a group member whose records are handed out per
 * partition, in order, several partitions at once, with the group offset committed only after
 * `handle` succeeded.
 *
 * - The client's stream interleaves the partitions of the member; records go to one queue per
 *   partition, and one worker per partition (at most `concurrency` at once) hands them to `handle`
 *   in batches of at most `maxBatch`. A failed or dead `handle` is retried with backoff on the same
 *   records while the partition stays ours.
 * - Commits are explicit, after handling, by one committer for all partitions, with the generation
 *   in which this member was given the partition: the coordinator refuses them once the group moved
 *   on, so a revoked partition is never committed by its former owner. The client's own commit
 *   would rejoin and retry under the new generation, which is why it is not used.
 * - A rebalance drops the queued records of revoked partitions; a handler in flight finishes, but
 *   its records are not committed (the new owner gets them: at least once). The stream re-reads
 *   kept partitions from the committed offset; records this member already took are skipped, so a
 *   rebalance alone never hands a record twice to the same member.
 * - Heartbeats run on the client's timer, independent of handlers, so slow handlers do not cost the
 *   membership.
 * - If the member fails (the stream gives up after a broker outage, or the client leaves the group),
 *   a new member replaces it with backoff, for as long as the scope is open.
 * - Ephemeral groups commit nothing: they resume from the positions this process reached, start at
 *   the end (or the beginning) of the log otherwise, and the group is deleted when the member leaves.
 */
import { type Admin, Consumer, kGetApi, type Message, type MessagesStream, stringDeserializers } from "@platformatic/kafka"
import { Cause, Deferred, Duration, Effect, FiberSet, Latch, Schedule, Scope, Semaphore } from "effect"
import { BrokerError, type ConsumeOptions, type DeliveredRecord } from "../../broker/Broker.ts"
import { baseOptions, call, type ClientOptions, isRetriable, toBrokerError } from "./Client.ts"

/**
 * The consumer settings of every member (benchmarks reuse them for the raw baseline).
 */
export const consumerSettings = {
  sessionTimeout: 10_000,
  rebalanceTimeout: 10_000,
  heartbeatInterval: 1_000,
  maxWaitTime: 500,
  highWaterMark: 1_024
} as const

type KafkaConsumer = Consumer<string, string, string, string>
type KafkaStream = MessagesStream<string, string, string, string>

interface Pending {
  readonly record: DeliveredRecord
  readonly offset: bigint
}

interface PartitionState {
  readonly key: string
  readonly topic: string
  readonly partition: number
  queue: Array<Pending>
  /** The offset after the last record taken in or handled; older ones are duplicates. */
  next: bigint
  /** The offset after the last record handled. */
  handled: bigint
  /** The offset last committed by this member. */
  committed: bigint
  /** Bumped when the partition is revoked, so a worker in flight sees it. */
  epoch: number
  running: boolean
}

interface Member {
  readonly consumer: KafkaConsumer
  readonly stream: KafkaStream
  readonly failed: Deferred.Deferred<BrokerError>
}

interface Ownership {
  readonly consumer: KafkaConsumer
  readonly generation: number
  readonly memberId: string
  readonly partitions: ReadonlySet<string>
}

const keyOf = (topic: string, partition: number) => `${topic}:${partition}`

/** Retriable start-up failures (a coordinator loading, a broker restarting): 200 ms doubling to 2 s, for about 40 s. */
const startRetry = Schedule.min([Schedule.exponential("200 millis"), Schedule.spaced("2 seconds")]).pipe(Schedule.upTo({ times: 25 }))
/** A failing handler or commit: 100 ms doubling to 5 s, as long as it takes. */
const backoff = Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("5 seconds")])
/** Replacing a failed member: 500 ms doubling to 10 s, as long as the scope is open. */
const restartBackoff = Schedule.min([Schedule.exponential("500 millis"), Schedule.spaced("10 seconds")])

const toRecord = (m: Message<string, string, string, string>): DeliveredRecord => {
  const headers: Record<string, string> = {}
  for (const [k, v] of m.headers) if (typeof k === "string") headers[k] = typeof v === "string" ? v : ""
  return {
    topic: m.topic,
    partition: m.partition,
    offset: m.offset.toString(),
    timestamp: Number(m.timestamp),
    key: typeof m.key === "string" ? m.key : null,
    value: typeof m.value === "string" ? m.value : "",
    headers
  }
}

/** `OffsetCommit` with the generation the member was given the partitions in (see the module header). */
const commitInGeneration = (
  owner: Ownership,
  group: string,
  offsets: ReadonlyArray<{ readonly topic: string; readonly partition: number; readonly offset: bigint }>
) =>
  Effect.tryPromise({
    try: async () => {
      const consumer = owner.consumer
      const coordinator = await consumer.findGroupCoordinator()
      const connections = await consumer.connectToBrokers([coordinator])
      const connection = connections.get(coordinator)
      if (connection === undefined) throw new Error(`the group coordinator ${coordinator} is not in the cluster metadata`)
      const api = await call<(...args: Array<unknown>) => void>((cb) => consumer[kGetApi]("OffsetCommit", cb as never))
      const topics = new Map<string, { name: string; partitions: Array<{ partitionIndex: number; committedOffset: bigint; committedLeaderEpoch: number; committedMetadata: null }> }>()
      for (const o of offsets) {
        let t = topics.get(o.topic)
        if (t === undefined) topics.set(o.topic, (t = { name: o.topic, partitions: [] }))
        t.partitions.push({ partitionIndex: o.partition, committedOffset: o.offset, committedLeaderEpoch: -1, committedMetadata: null })
      }
      await call<unknown>((cb) => api(connection, group, owner.generation, owner.memberId, null, [...topics.values()], cb))
    },
    catch: toBrokerError(`Kafka commit (group ${group})`)
  })

/**
 * Where a new (non-ephemeral) group starts when `fromBeginning` is false: the end of each partition
 * it has no offset for, as of now, committed as the group's offset before the member joins. The
 * client's own "latest" is resolved later, when a partition is assigned, so records published right
 * after `consume` returned, or before another member got the partition, could be skipped.
 */
const pinEnds = (admin: Admin, group: string, topics: ReadonlyArray<string>) =>
  Effect.tryPromise({
    try: async () => {
      const [listed] = await admin.listConsumerGroupOffsets({ groups: [group] })
      const committed = new Set<string>()
      for (const t of listed?.topics ?? []) for (const p of t.partitions) if (p.committedOffset >= 0n) committed.add(keyOf(t.name, p.partitionIndex))
      const metadata = await admin.metadata({ topics: [...topics] })
      const request = topics.map((name) => ({
        name,
        partitions: Array.from({ length: metadata.topics.get(name)?.partitionsCount ?? 0 }, (_, partitionIndex) => ({ partitionIndex, timestamp: -1n }))
          .filter((p) => !committed.has(keyOf(name, p.partitionIndex)))
      })).filter((t) => t.partitions.length > 0)
      if (request.length === 0) return
      const ends = await admin.listOffsets({ topics: request })
      await admin.alterConsumerGroupOffsets({
        groupId: group,
        topics: ends.map((t) => ({ name: t.name, partitionOffsets: t.partitions.map((p) => ({ partition: p.partitionIndex, offset: p.offset })) }))
      })
    },
    catch: toBrokerError(`Kafka pin the start offsets (group ${group})`)
  })

/**
 * Joins the group and handles records until the scope closes; returns once the member is in the
 * group and knows where to read from.
 */
export const consume = Effect.fn("KafkaBroker.consume")(function*(client: ClientOptions, admin: Admin, options: ConsumeOptions) {
  const group = options.group
  const topics = [...new Set(options.topics)]
  const maxBatch = Math.max(1, options.maxBatch ?? 500)
  const fromBeginning = options.fromBeginning ?? true
  const ephemeral = options.ephemeral ?? false
  const graceMs = options.shutdownGraceMs ?? 10_000
  const scope = yield* Effect.scope

  const partitions = new Map<string, PartitionState>()
  let ownership: Ownership | undefined
  let member: Member | undefined
  let closing = false
  let queued = 0
  let paused = false

  const permits = yield* Semaphore.make(Math.max(1, options.concurrency ?? 4))
  const commitWanted = yield* Latch.make(false)
  // Handlers run as fibers of this scope: closing it stops new batches, gives the handlers in flight
  // a bounded grace, commits what they finished, closes the member, then interrupts what is left.
  const fibers = yield* FiberSet.make<unknown, unknown>()
  const runFork = yield* FiberSet.runtime(fibers)<never>()

  const stateOf = (topic: string, partition: number): PartitionState => {
    const key = keyOf(topic, partition)
    let state = partitions.get(key)
    if (state === undefined) {
      state = { key, topic, partition, queue: [], next: -1n, handled: -1n, committed: -1n, epoch: 0, running: false }
      partitions.set(key, state)
    }
    return state
  }

  const owns = (state: PartitionState) => ownership !== undefined && ownership.partitions.has(state.key)

  const resumeIfDrained = () => {
    if (paused && queued <= consumerSettings.highWaterMark / 2 && member !== undefined) {
      paused = false
      member.stream.resume()
    }
  }

  /** The partitions are no longer this member's: forget what waits, keep what was handled. */
  const revoke = (state: PartitionState) => {
    state.epoch++
    queued -= state.queue.length
    state.queue = []
    state.next = state.handled
  }

  // ---- commits: one committer, one request for every partition with handled records

  const commitPending = Effect.suspend(() => {
    const owner = ownership
    if (owner === undefined || ephemeral) return Effect.void
    const due = [...partitions.values()].filter((s) => owner.partitions.has(s.key) && s.handled > s.committed)
    if (due.length === 0) return Effect.void
    const offsets = due.map((s) => ({ topic: s.topic, partition: s.partition, offset: s.handled }))
    return commitInGeneration(owner, group, offsets).pipe(
      Effect.tap(() =>
        Effect.sync(() => {
          for (const [i, s] of due.entries()) if (offsets[i]!.offset > s.committed) s.committed = offsets[i]!.offset
        })
      )
    )
  })

  const committer = Effect.gen(function*() {
    yield* commitWanted.await
    yield* commitWanted.close
    yield* commitPending.pipe(
      // a generation the group left behind is final for these offsets: the next owner re-reads them
      Effect.retry({ schedule: backoff, while: (e) => e.isRetryable && !closing }),
      Effect.catch((e) => Effect.logDebug(`KafkaBroker: commit of group ${group} not done (${e.message}); the records stay uncommitted`))
    )
  }).pipe(Effect.forever)

  // ---- handling: one worker per partition with queued records, at most `concurrency` at once

  const handleOnce = (state: PartitionState, epoch: number, batch: ReadonlyArray<Pending>) =>
    // each attempt calls `handle` again (it may build its effect eagerly)
    Effect.suspend(() => options.handle(batch.map((p) => p.record))).pipe(
      Effect.withSpan("KafkaBroker.handle", { attributes: { topic: state.topic, partition: state.partition, size: batch.length } }),
      Effect.sandbox,
      Effect.retry({
        schedule: backoff,
        while: (cause) => !Cause.hasInterruptsOnly(cause) && !closing && state.epoch === epoch
      }),
      Effect.as(true),
      Effect.catch(() => Effect.succeed(false))
    )

  const worker = (state: PartitionState): Effect.Effect<void> =>
    permits.withPermits(1)(Effect.gen(function*() {
      while (state.queue.length > 0 && !closing) {
        const epoch = state.epoch
        const batch = state.queue.slice(0, maxBatch)
        const last = batch[batch.length - 1]!.offset
        const ok = yield* handleOnce(state, epoch, batch)
        if (state.epoch !== epoch) {
          // revoked while handling: the queue was emptied (and maybe refilled after a new
          // assignment); what this batch handled still counts, and is not taken in again
          if (ok && last + 1n > state.handled) state.handled = last + 1n
          if (state.next < state.handled) state.next = state.handled
          const before = state.queue.length
          state.queue = state.queue.filter((p) => p.offset >= state.handled)
          queued -= before - state.queue.length
          continue
        }
        if (!ok) return
        state.queue.splice(0, batch.length)
        queued -= batch.length
        state.handled = last + 1n
        resumeIfDrained()
        if (!ephemeral) yield* commitWanted.open
      }
    })).pipe(
      Effect.ensuring(Effect.sync(() => {
        state.running = false
        if (state.queue.length > 0 && !closing) start(state)
      }))
    )

  const start = (state: PartitionState) => {
    state.running = true
    runFork(worker(state))
  }

  // ---- the member: the client, its group membership and its stream

  const onRecord = (consumer: KafkaConsumer) => (message: Message<string, string, string, string>) => {
    if (closing || ownership === undefined || ownership.consumer !== consumer) return
    const state = stateOf(message.topic, message.partition)
    if (!ownership.partitions.has(state.key) || message.offset < state.next) return
    state.next = message.offset + 1n
    state.queue.push({ record: toRecord(message), offset: message.offset })
    queued++
    if (!paused && queued >= consumerSettings.highWaterMark && member !== undefined) {
      paused = true
      member.stream.pause()
    }
    if (!state.running) start(state)
  }

  const onJoin = (consumer: KafkaConsumer) => (payload: { generationId?: number; memberId: string; assignments?: ReadonlyArray<{ topic: string; partitions: ReadonlyArray<number> }> }) => {
    const owned = new Set<string>()
    for (const a of payload.assignments ?? []) for (const p of a.partitions) owned.add(keyOf(a.topic, p))
    for (const state of partitions.values()) if (!owned.has(state.key)) revoke(state)
    ownership = { consumer, generation: payload.generationId ?? -1, memberId: payload.memberId, partitions: owned }
    // handled records of kept partitions whose commit did not make it are committed in this generation
    if (!ephemeral) runFork(commitWanted.open)
  }

  const closeMember = (m: Member) =>
    Effect.promise(async () => {
      await m.stream.close().catch(() => undefined)
      await m.consumer.close(true).catch(() => undefined)
    }).pipe(Effect.timeoutOption("10 seconds"), Effect.asVoid)

  const deleteGroup = Effect.tryPromise(() => admin.deleteGroups({ groups: [group] })).pipe(
    Effect.timeoutOption("5 seconds"),
    Effect.catchCause((cause) => Effect.logDebug(`KafkaBroker: could not delete the ephemeral group ${group}`, cause))
  )

  /** A new member: joins, opens the stream and waits until it knows its offsets. */
  const open = Effect.gen(function*() {
    const failed = yield* Deferred.make<BrokerError>()
    const fail = (what: string) => (error: unknown) => {
      Deferred.doneUnsafe(failed, Effect.succeed(toBrokerError(`Kafka consumer (group ${group}): ${what}`)(error)))
    }
    const consumer: KafkaConsumer = new Consumer<string, string, string, string>({
      ...baseOptions(client, 10),
      groupId: group,
      deserializers: stringDeserializers,
      autocommit: false,
      sessionTimeout: consumerSettings.sessionTimeout,
      rebalanceTimeout: consumerSettings.rebalanceTimeout,
      heartbeatInterval: consumerSettings.heartbeatInterval,
      maxWaitTime: consumerSettings.maxWaitTime,
      highWaterMark: consumerSettings.highWaterMark
    })
    consumer.on("consumer:group:join", onJoin(consumer))
    // the client reports a rejoin it gave up on here; without a listener it would throw
    consumer.on("error", fail("the member left the group"))
    const release = (stream: KafkaStream | undefined) =>
      Effect.promise(async () => {
        await stream?.close().catch(() => undefined)
        await consumer.close(true).catch(() => undefined)
      }).pipe(Effect.timeoutOption("10 seconds"), Effect.asVoid)
    const offsets = ephemeral
      ? [...partitions.values()].filter((s) => s.next >= 0n).map((s) => ({ topic: s.topic, partition: s.partition, offset: s.next }))
      : undefined
    const stream = yield* Effect.tryPromise({
      try: async () => {
        const s: KafkaStream = await consumer.consume({
          topics,
          autocommit: false,
          // ephemeral: from where this process got, else the end (or the beginning) of the log
          ...(ephemeral ? { mode: "manual" as const, offsets: offsets ?? [] } : { mode: "committed" as const }),
          fallbackMode: fromBeginning ? "earliest" : "latest",
          maxWaitTime: consumerSettings.maxWaitTime,
          sessionTimeout: consumerSettings.sessionTimeout,
          rebalanceTimeout: consumerSettings.rebalanceTimeout,
          heartbeatInterval: consumerSettings.heartbeatInterval
        })
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("no offsets after 30 s")), 30_000)
          s.once("offsets", () => {
            clearTimeout(timer)
            resolve()
          })
          s.once("error", (e) => {
            clearTimeout(timer)
            reject(e)
          })
        })
        return s
      },
      catch: (e) => toBrokerError(`Kafka consumer (group ${group})`)(e)
    }).pipe(Effect.onError(() => release(undefined)))
    stream.on("data", onRecord(consumer))
    stream.on("error", fail("the stream failed"))
    stream.on("close", () => {
      if (!closing) fail("the stream closed")(new Error("closed"))
    })
    return { consumer, stream, failed } satisfies Member
  })

  /** Replaces a failed member, for as long as the scope is open. */
  const supervise = (first: Member): Effect.Effect<void> =>
    Effect.gen(function*() {
      let current = first
      for (;;) {
        const why = yield* Deferred.await(current.failed)
        if (closing) return
        yield* Effect.logWarning(`KafkaBroker: ${why.message}; a new member takes over`)
        member = undefined
        ownership = undefined
        for (const state of partitions.values()) revoke(state)
        yield* closeMember(current)
        current = yield* open.pipe(
          Effect.tapError((e) => Effect.logWarning(`KafkaBroker: group ${group} could not rejoin yet (${e.message})`)),
          Effect.retry({ schedule: restartBackoff, while: () => !closing }),
          Effect.orDie
        )
        member = current
        if (paused) {
          paused = false
          resumeIfDrained()
        }
      }
    })

  if (!ephemeral && !fromBeginning) {
    yield* pinEnds(admin, group, topics).pipe(
      Effect.retry({ schedule: startRetry, while: (e) => e.isRetryable }),
      Effect.catch((e) => Effect.logDebug(`KafkaBroker: group ${group} keeps the client's "latest" (${e.message})`))
    )
  }
  const first = yield* open.pipe(
    Effect.tapError((e) => (e.isRetryable ? Effect.logDebug(`KafkaBroker: group ${group} not joined yet (${e.message}); retrying`) : Effect.void)),
    Effect.retry({ schedule: startRetry, while: (e) => e.isRetryable || isRetriable(e.cause) })
  )
  member = first
  // finalizers run last-added first: stop and grace, final commit, member, remaining handlers
  yield* Scope.addFinalizer(scope, Effect.gen(function*() {
    if (member !== undefined) yield* closeMember(member)
    if (ephemeral) yield* deleteGroup
  }))
  yield* Scope.addFinalizer(scope, commitPending.pipe(Effect.timeoutOption("5 seconds"), Effect.ignore))
  yield* Scope.addFinalizer(scope, Effect.gen(function*() {
    closing = true
    yield* FiberSet.awaitEmpty(fibers).pipe(Effect.timeoutOption(Duration.millis(graceMs)))
  }))
  if (!ephemeral) yield* Effect.forkIn(committer, scope)
  yield* Effect.forkIn(supervise(first), scope)
})

export { BrokerError }
