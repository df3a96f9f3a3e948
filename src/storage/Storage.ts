/**
 * The storage bundle: every storage port of one backend, sharing one connection pool (PostgreSQL)
 * or one environment (LMDB), so they can join one transaction.
 *
 * @since 0.1.0
 */
import type { Leadership } from "../cluster/Leadership.ts"
import type { EventStore } from "../eventstore/EventStore.ts"
import type { Transactions } from "../transaction/Transactions.ts"
import type { Inbox } from "../queue/Inbox.ts"
import type { DocumentStore } from "../readmodel/DocumentStore.ts"
import type { Outbox } from "../queue/Outbox.ts"
import type { ProjectionStore } from "../readmodel/ProjectionStore.ts"
import type { SnapshotStore } from "../snapshot/SnapshotStore.ts"
import type { UnitOfWork } from "./UnitOfWork.ts"

/**
 * The services a storage layer provides.
 *
 * @category models
 * @since 0.1.0
 */
export type Services = UnitOfWork | EventStore | SnapshotStore | Transactions | Outbox | Inbox | DocumentStore | Leadership | ProjectionStore
