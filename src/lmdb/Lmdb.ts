/**
 * The embedded storage backend: ONE LMDB environment (one folder) providing every storage port
 * (event store, snapshots, minos transactions, outbox, inbox) and the unit of work they join.
 *
 * **Details**
 *
 * - A unit of work stages its writes while its Effect runs and applies them at the end in one
 *   synchronous LMDB write transaction, so no Effect (user code, async IO) ever holds LMDB's write
 *   lock. Every staged write checks its condition again inside that transaction (expected stream
 *   version, transaction still pending, …); a failed check aborts it and fails the unit with the
 *   port's typed error, and then nothing is written. Nested `transaction` calls join the outer unit.
 * - Inside a unit, reads see its staged writes (stream versions and events, snapshots, transaction
 *   records); the outbox's `pending` counts committed rows only.
 * - A port method called outside a unit commits at once, in its own write transaction.
 * - `afterCommit` callbacks run after the unit committed (at once outside a unit); a failing one
 *   is logged, the commit stands.
 *
 * **Gotchas**
 *
 * - Inside a unit, reads do not see what a staged `Transactions.commit`/`reject` will move or
 *   discard until the unit committed.
 * - `Outbox.awaitWork` wakes on commits of this process only; relays in other processes sharing the
 *   folder fall back to their `maxWaitMs`.
 * - A streamed `SnapshotStore.find` without ordering reads page by page, each page as of its own
 *   read; rows written meanwhile may or may not show up.
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import * as Leadership from "../cluster/Leadership.ts"
import { layer as eventStoreLayer } from "./LmdbEventStore.ts"
import { layer as transactionsLayer } from "./LmdbTransactions.ts"
import { layer as inboxLayer } from "./LmdbInbox.ts"
import { layer as outboxLayer } from "./LmdbOutbox.ts"
import { layer as documentStoreLayer } from "./LmdbDocumentStore.ts"
import { layer as projectionStoreLayer } from "./LmdbProjectionStore.ts"
import { layer as snapshotStoreLayer } from "./LmdbSnapshotStore.ts"
import { LmdbEnv, type LmdbOptions, make } from "./internal/Env.ts"
import type * as Storage from "../storage/Storage.ts"
import { type StorageError, UnitOfWork } from "../storage/UnitOfWork.ts"

export {
  /**
   * The opened environment and its named databases.
   *
   * @category services
   * @since 0.1.0
   */
  LmdbEnv,
  /**
   * @category models
   * @since 0.1.0
   */
  type LmdbOptions
}

/**
 * Opens the environment at `options.path` (creating the folder), closed when the layer is released.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerEnv = (options: LmdbOptions): Layer.Layer<LmdbEnv, StorageError> => Layer.effect(LmdbEnv, make(options))

/**
 * The unit of work over the environment.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerUnitOfWork: Layer.Layer<UnitOfWork, never, LmdbEnv> = Layer.effect(
  UnitOfWork,
  Effect.map(LmdbEnv, (env) => UnitOfWork.of({ backend: "lmdb", transaction: env.transaction, afterCommit: env.afterCommit }))
)

/**
 * Every storage port on one LMDB environment, plus the environment itself (for stores that join
 * the same unit of work, such as an inbox or read models).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: LmdbOptions): Layer.Layer<Storage.Services | LmdbEnv, StorageError> =>
  Layer.mergeAll(layerUnitOfWork, eventStoreLayer, snapshotStoreLayer, transactionsLayer, outboxLayer, inboxLayer, documentStoreLayer, projectionStoreLayer, Leadership.layerLocal()).pipe(Layer.provideMerge(layerEnv(options)))
