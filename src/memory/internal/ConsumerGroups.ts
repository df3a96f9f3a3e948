/**
 * Consumer groups of the in-process broker: membership, rebalancing, one worker per owned partition,
 * committed offsets and redelivery with backoff. The persistence, when there is one, is told about
 * joins, commits and groups going idle through a {@link GroupJournal}.
 *
 * @internal
 */
import { Cause, Clock, Duration, Effect, Exit, FiberSet, Schedule, type Scope, Semaphore } from "effect"
import type { BrokerError, ConsumeOptions } from "../../broker/Broker.ts"
import { endOf, type Partition, type Topic } from "./PartitionLog.ts"

/** One partition as seen by one group. */
export interface Slot {
  readonly partition: Partition
  /** The next offset the group has not handled yet. */
  committed: number
  owner: Member | undefined
  /** Held while a batch of this partition is being handled: a new owner waits for the old one. */
  readonly lock: Semaphore.Semaphore
}

export interface Group {
  readonly name: string
  /** In join order; the order breaks ties in the assignment. */
  readonly members: Array<Member>
  readonly slots: Map<Partition, Slot>
  /** When the group last lost its last member (undefined while it has members). */
  idleSince: number | undefined
  /** Never persisted, and gone once its last member left (`ConsumeOptions.ephemeral`). */
  readonly ephemeral: boolean
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

/** A group as the persistence found it. */
export interface RestoredGroup {
  readonly name: string
  readonly offsets: ReadonlyArray<{ readonly partition: Partition; readonly committed: number }>
  readonly idleSince: number
}

/** What the persistence records about groups; every call concerns a group that is still known. */
export interface GroupJournal {
  /** Writes the first offsets of a joining group and clears its idle mark; a failure fails the join. */
  readonly register: (group: string, fresh: ReadonlyArray<Slot>) => BrokerError | undefined
  /** Writes an advanced offset (asynchronously: a lost write means a redelivery after a restart). */
  readonly commit: (group: string, slot: Slot) => void
  /** Records that a group has no member since `now`. */
  readonly idle: (group: string, now: number) => Effect.Effect<void>
}

export interface ConsumerGroups {
  readonly groups: ReadonlyMap<string, Group>
  readonly restore: (groups: ReadonlyArray<RestoredGroup>) => void
  /** Drops a group (retention forgot it). */
  readonly forget: (group: Group) => void
  /** Joins `options.group` on `topics` (existing, validated) until the scope closes. */
  readonly join: (options: ConsumeOptions, topics: ReadonlyArray<Topic>) => Effect.Effect<void, BrokerError, Scope.Scope>
}

export interface GroupsOptions {
  readonly retryInitialMs: number
  readonly retryMaxMs: number
  readonly concurrency: number
  readonly maxBatch: number
  readonly journal: GroupJournal | undefined
}

const newSlot = (partition: Partition, committed: number): Slot => ({ partition, committed, owner: undefined, lock: Semaphore.makeUnsafe(1) })

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

export const make = (options: GroupsOptions): ConsumerGroups => {
  const { journal } = options
  const groups = new Map<string, Group>()
  const isCurrent = (group: Group): boolean => groups.get(group.name) === group

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
                if (journal !== undefined && !member.group.ephemeral && isCurrent(member.group)) journal.commit(member.group.name, slot)
              }
            })
          )
        )
      )
    })

  /**
   * One turn of a partition's worker: false once the partition is revoked (the only exit, decided
   * and recorded in one synchronous step, see `assign`); fails with the cause when `handle` failed.
   */
  const turn = (member: Member, slot: Slot, worker: Worker): Effect.Effect<boolean, Cause.Cause<unknown>> =>
    Effect.suspend(() => {
      if (worker.revoked || member.closed) {
        if (member.workers.get(slot) === worker) member.workers.delete(slot)
        return Effect.succeed(false)
      }
      if (slot.committed >= endOf(slot.partition)) return Effect.as(idle(slot, worker), true)
      const locked = slot.lock.withPermits(1)(handleNext(member, slot, worker))
      return Effect.flatMap(
        member.permits === undefined ? locked : member.permits.withPermits(1)(locked),
        (outcome) => (outcome === "idle" || Exit.isSuccess(outcome) ? Effect.succeed(true) : Effect.fail(outcome.cause))
      )
    })

  /** Doubling backoff from `retryInitialMs`, at most `retryMaxMs`; restarts after a handled batch. */
  const redelivery = (member: Member, slot: Slot) =>
    Schedule.min([Schedule.exponential(Duration.millis(options.retryInitialMs)), Schedule.spaced(Duration.millis(options.retryMaxMs))]).pipe(
      Schedule.setInputType<Cause.Cause<unknown>>(),
      Schedule.tap(({ attempt, duration, input }) =>
        Effect.logWarning(
          `MemoryBroker: handle failed for ${slot.partition.topic}[${slot.partition.index}] in group ${member.group.name} ` +
            `(attempt ${attempt}); the records are delivered again in ${Duration.toMillis(duration)} ms`,
          input
        )
      )
    )

  /**
   * After a failed turn: the turn again on the redelivery schedule until it gets through. The first
   * failure goes through the schedule too (its delay and warning); the happy path never builds one.
   */
  const redeliver = (member: Member, slot: Slot, worker: Worker, cause: Cause.Cause<unknown>): Effect.Effect<boolean> => {
    let first: Cause.Cause<unknown> | undefined = cause
    const again = Effect.suspend(() => {
      if (first === undefined) return turn(member, slot, worker)
      const failed = first
      first = undefined
      return Effect.fail(failed)
    })
    // unreachable `orDie`: the backoff never gives up, the partition is retried until handled or revoked
    return again.pipe(Effect.retry(redelivery(member, slot)), Effect.orDie)
  }

  /**
   * The loop of one partition of one member; ends when the partition is revoked. A plain recursion,
   * not `Effect.repeat`: each schedule step yields, and a worker drains its partition in one go.
   */
  const work = (member: Member, slot: Slot, worker: Worker): Effect.Effect<void> => {
    const next: Effect.Effect<void> = turn(member, slot, worker).pipe(
      Effect.catch((cause) => redeliver(member, slot, worker, cause)),
      Effect.flatMap((more) => (more ? next : Effect.void))
    )
    // forked from inside a rebalance: let the rebalance finish first
    return Effect.andThen(Effect.yieldNow, next)
  }

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

  const leave = (member: Member) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.suspend(() => {
        const group = member.group
        member.closed = true
        const at = group.members.indexOf(member)
        if (at >= 0) group.members.splice(at, 1)
        rebalance(group)
        if (group.members.length > 0) return Effect.void
        group.idleSince = now
        if (group.ephemeral) {
          // nothing of it stays behind
          if (isCurrent(group)) groups.delete(group.name)
          return Effect.void
        }
        return journal !== undefined && isCurrent(group) ? journal.idle(group.name, now) : Effect.void
      }))

  const join = Effect.fnUntraced(function*(consumeOptions: ConsumeOptions, topics: ReadonlyArray<Topic>) {
    const run = yield* FiberSet.makeRuntime<never, void, never>()
    const concurrency = Math.max(1, Math.floor(consumeOptions.concurrency ?? options.concurrency))
    const mostPartitions = topics.reduce((n, topic) => n + topic.partitions.length, 0)
    const permits = concurrency < mostPartitions ? yield* Semaphore.make(concurrency) : undefined
    const fromBeginning = consumeOptions.fromBeginning ?? true

    // the group's first offset on each partition it has none for; with persistence, written before
    // joining, so a restart continues from there (not from wherever the log ends by then)
    const name = consumeOptions.group
    const existing = groups.get(name)
    const fresh: Array<Slot> = []
    for (const topic of topics) {
      for (const partition of topic.partitions) {
        if (existing?.slots.has(partition) !== true) fresh.push(newSlot(partition, fromBeginning ? partition.base : endOf(partition)))
      }
    }
    const ephemeral = existing?.ephemeral ?? consumeOptions.ephemeral ?? false
    if (journal !== undefined && !ephemeral && (fresh.length > 0 || existing === undefined || existing.members.length === 0)) {
      const failed = journal.register(name, fresh)
      if (failed !== undefined) return yield* Effect.fail(failed)
    }
    let group = existing
    if (group === undefined) {
      group = { name, members: [], slots: new Map(), idleSince: undefined, ephemeral }
      groups.set(name, group)
    }
    for (const slot of fresh) group.slots.set(slot.partition, slot)
    const member: Member = {
      group,
      topics,
      options: consumeOptions,
      maxBatch: Math.max(1, Math.floor(consumeOptions.maxBatch ?? options.maxBatch)),
      permits,
      workers: new Map(),
      run: (effect) => run(effect),
      closed: false
    }
    // Leaving runs before the FiberSet's finalizer (registered earlier): the partitions move first,
    // then the member's workers are interrupted, which releases the slot locks the new owners wait on.
    // Registered before joining, so an interruption in between cannot leave a ghost member behind.
    yield* Effect.addFinalizer(() => leave(member))
    group.members.push(member)
    group.idleSince = undefined
    rebalance(group)
  })

  const restore = (restored: ReadonlyArray<RestoredGroup>): void => {
    for (const { idleSince, name, offsets } of restored) {
      const group: Group = { name, members: [], slots: new Map(), idleSince, ephemeral: false }
      for (const { committed, partition } of offsets) group.slots.set(partition, newSlot(partition, committed))
      groups.set(name, group)
    }
  }

  const forget = (group: Group): void => {
    if (isCurrent(group)) groups.delete(group.name)
  }

  return { groups, restore, forget, join }
}
