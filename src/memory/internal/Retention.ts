/**
 * Retention of the persisted in-process broker: groups without members for longer than
 * `retentionMs` are forgotten, then each partition's records that every remaining group committed
 * and that are older than `retentionMs` are deleted, on disk first, then in memory.
 *
 * @internal
 */
import { Clock, Duration, Effect, Schedule, type Scope } from "effect"
import type { ConsumerGroups, Group } from "./ConsumerGroups.ts"
import * as LogStore from "./LogStore.ts"
import { endOf, type Partition, type PartitionLog } from "./PartitionLog.ts"

export interface RetentionOptions {
  readonly retentionMs: number
  readonly intervalMs: number
}

/** What one pass deletes. */
export interface Plan {
  readonly expired: ReadonlyArray<Group>
  readonly drops: ReadonlyArray<{ readonly partition: Partition; readonly to: number }>
}

/** Decides what a pass at `now` deletes; pure over the current state. */
export const plan = (log: PartitionLog, groups: ConsumerGroups, retentionMs: number, now: number): Plan => {
  const expired: Array<Group> = []
  const lowest = new Map<Partition, number>()
  for (const group of groups.groups.values()) {
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
  for (const topic of log.topics.values()) {
    for (const partition of topic.partitions) {
      const limit = Math.min(lowest.get(partition) ?? Number.POSITIVE_INFINITY, endOf(partition))
      let to = partition.base
      while (to < limit && partition.records[to - partition.base]!.timestamp < cutoff) to++
      if (to > partition.base) drops.push({ partition, to })
    }
  }
  return { expired, drops }
}

/** One pass: deletes on disk, then in memory; a failed write leaves both as they were. */
export const trim = (store: LogStore.LogStore, log: PartitionLog, groups: ConsumerGroups, options: RetentionOptions) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const { drops, expired } = plan(log, groups, options.retentionMs, now)
    if (expired.length === 0 && drops.length === 0) return Effect.void
    const failed = LogStore.writeRetention(store, expired.map((group) => ({ name: group.name, partitions: group.slots.keys() })), drops)
    if (failed !== undefined) return store.closed ? Effect.void : Effect.logWarning(`${failed.message}; retrying in ${options.intervalMs} ms`)
    for (const group of expired) groups.forget(group)
    for (const { partition, to } of drops) log.dropBelow(partition, to)
    return Effect.void
  })

/** Runs a pass every `intervalMs` (the first after one interval) until the scope closes. */
export const run = (store: LogStore.LogStore, log: PartitionLog, groups: ConsumerGroups, options: RetentionOptions): Effect.Effect<void, never, Scope.Scope> =>
  Effect.asVoid(Effect.forkScoped(Effect.schedule(trim(store, log, groups, options), Schedule.spaced(Duration.millis(options.intervalMs)))))
