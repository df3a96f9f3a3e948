/**
 * The `Leadership` port: cluster-wide singletons. `run(name, effect)` runs `effect` on at most one
 * replica of the service at a time — the one holding the lease of `name` — and on another replica as
 * soon as that one stops or loses the lease. Periodic jobs, saga sweeps and projection runners use it
 * so that they run once per cluster, not once per replica.
 *
 * Backends: PostgreSQL (`PgLeadership`: a session advisory lock per name, held on one dedicated
 * connection of the process; PostgreSQL frees it when that session ends, so a crashed or cut-off
 * leader loses the lease) and {@link layerLocal} (one process: the embedded LMDB storage is opened
 * by one process per folder, so the process itself is the cluster). One conformance suite checks both.
 *
 * **Details**
 *
 * - A replica that does not hold the lease tries again every `retryInterval`.
 * - The leader checks its lease every `checkInterval`; when it is lost the effect is interrupted and
 *   the replica goes back to trying.
 * - When the effect ends (success, failure or defect, which is logged) the lease is released and
 *   taken again after `retryInterval`, by this replica or another.
 * - Interrupting `run` interrupts the effect and releases the lease.
 *
 * **Gotchas**
 *
 * A lease is a lock, not a fence: a leader that lost its connection notices at its next check, so
 * for up to `checkInterval` two replicas may run. Singletons must stay correct when that happens
 * (they write through the unit of work with expected versions and idempotent claims).
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Schedule } from "effect"
import { describeCause } from "../internal/Outcome.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface LeadershipOptions {
  /** How often a replica without the lease tries to take it (default 1 s). */
  readonly retryInterval?: Duration.Input
  /** How often the leader checks that it still holds the lease (default 2 s). */
  readonly checkInterval?: Duration.Input
}

/**
 * @category services
 * @since 0.1.0
 */
export interface LeadershipShape {
  /** Runs `effect` whenever this replica holds the lease of `name`; never returns (interrupt it to stop). */
  readonly run: <A, E, R>(name: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<never, never, R>
  /** Whether this replica holds the lease of `name` right now. */
  readonly isLeader: (name: string) => Effect.Effect<boolean>
}

/**
 * @category services
 * @since 0.1.0
 */
export class Leadership extends Context.Service<Leadership, LeadershipShape>()("effect-minos/cluster/Leadership") {}

/**
 * A lease as a backend offers it: try to take it (`true` when taken), check it, give it back.
 *
 * @category models
 * @since 0.1.0
 */
export interface Lease {
  readonly acquire: (name: string) => Effect.Effect<boolean>
  /** Completes when the lease is lost (it never completes while the lease holds). */
  readonly lost: (name: string) => Effect.Effect<void>
  readonly release: (name: string) => Effect.Effect<void>
}

/**
 * The shared engine over a backend's {@link Lease}s: the acquire / run / watch / release cycle.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeWith = (lease: Lease, options: LeadershipOptions = {}): LeadershipShape => {
  const retryInterval = Duration.fromInputUnsafe(options.retryInterval ?? "1 second")
  // names this process runs or is trying to take: a backend's lock may be reentrant per process
  const claimed = new Set<string>()
  const held = new Set<string>()
  const once = <A, E, R>(name: string, effect: Effect.Effect<A, E, R>): Effect.Effect<void, never, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        if (claimed.has(name)) return
        claimed.add(name)
        if (!(yield* lease.acquire(name))) {
          claimed.delete(name)
          return
        }
        held.add(name)
        yield* restore(
          Effect.raceFirst(
            effect.pipe(
              Effect.catchCause((cause) => Effect.logWarning(`singleton ${name} stopped: ${describeCause(cause)}`)),
              Effect.asVoid
            ),
            lease.lost(name).pipe(Effect.andThen(Effect.logWarning(`singleton ${name}: lease lost, stopping`)))
          )
        ).pipe(Effect.ensuring(Effect.andThen(lease.release(name), Effect.sync(() => {
          held.delete(name)
          claimed.delete(name)
        }))))
      })
    )
  return {
    run: (name, effect) => once(name, effect).pipe(Effect.repeat(Schedule.spaced(retryInterval)), Effect.andThen(Effect.never)),
    isLeader: (name) => Effect.sync(() => held.has(name))
  }
}

/**
 * Leases within one process: at most one fiber runs each name.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeLocal = (options: LeadershipOptions = {}): Effect.Effect<LeadershipShape> =>
  Effect.sync(() => {
    const taken = new Set<string>()
    const lease: Lease = {
      acquire: (name) =>
        Effect.sync(() => {
          if (taken.has(name)) return false
          taken.add(name)
          return true
        }),
      lost: () => Effect.never,
      release: (name) => Effect.sync(() => void taken.delete(name))
    }
    return makeWith(lease, options)
  })

/**
 * @category layers
 * @since 0.1.0
 */
export const layerLocal = (options: LeadershipOptions = {}): Layer.Layer<Leadership> => Layer.effect(Leadership, Effect.map(makeLocal(options), Leadership.of))

/**
 * How often a leader checks its lease, as a `Schedule` (backends poll with it).
 *
 * @category constructors
 * @since 0.1.0
 */
export const checkSchedule = (options: LeadershipOptions = {}) => Schedule.spaced(options.checkInterval ?? "2 seconds")
