/**
 * PostgreSQL: the connection pool every PostgreSQL backend shares (`@effect/sql-pg`, exposed as
 * `SqlClient` and `PgClient`), and the storage bundle built on it. Sharing one pool is what lets
 * events, snapshots, outbox and inbox rows and the user's read-model writes join one ambient
 * `sql.withTransaction`.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Layer, Redacted } from "effect"
import { SqlClient, SqlError } from "effect/sql"
import * as PgEventStore from "./PgEventStore.ts"
import * as PgTransactions from "./PgTransactions.ts"
import * as PgInbox from "./PgInbox.ts"
import * as PgLeadership from "./PgLeadership.ts"
import * as PgDocumentStore from "./PgDocumentStore.ts"
import * as PgOutbox from "./PgOutbox.ts"
import * as PgProjectionStore from "./PgProjectionStore.ts"
import * as PgSnapshotStore from "./PgSnapshotStore.ts"
import { describe, kindOf } from "./internal/Errors.ts"
import { migrate } from "./internal/Migrations.ts"
import type * as Storage from "../storage/Storage.ts"
import { StorageError, UnitOfWork } from "../storage/UnitOfWork.ts"

/**
 * Where and how to connect.
 *
 * @category models
 * @since 0.1.0
 */
export interface PostgresOptions {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
  readonly password: Redacted.Redacted<string>
  readonly maxConnections: number
  readonly connectTimeoutMs: number
  /** Schema for every table (the connections' `search_path`). */
  readonly schema: string
  /** TLS to the server (PEM contents); absent: plain TCP. */
  readonly ssl?: PostgresTls | undefined
}

/**
 * TLS towards PostgreSQL.
 *
 * @category models
 * @since 0.1.0
 */
export interface PostgresTls {
  /** CA certificates to trust instead of the system ones. */
  readonly ca?: string | undefined
  /** Client certificate and key, for servers that ask for one. */
  readonly cert?: string | undefined
  readonly key?: Redacted.Redacted<string> | undefined
  /** Refuse a server certificate that does not check out (default true). */
  readonly rejectUnauthorized?: boolean | undefined
  /** The name the server certificate must carry, when it is not `host`. */
  readonly serverName?: string | undefined
}

const schemaPattern = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * A pool for the given settings; connections use `settings.schema` as their search path.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (settings: PostgresOptions): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError.SqlError> => {
  if (!schemaPattern.test(settings.schema)) throw new Error(`Invalid PostgreSQL schema name ${JSON.stringify(settings.schema)}`)
  return PgClient.layer({
    host: settings.host,
    port: settings.port,
    database: settings.database,
    username: settings.user,
    password: settings.password,
    maxConnections: settings.maxConnections,
    connectTimeout: Duration.millis(settings.connectTimeoutMs),
    applicationName: "effect-minos",
    startupParameters: settings.schema === "public" ? {} : { search_path: settings.schema },
    ...(settings.ssl === undefined ? {} : {
      ssl: {
        rejectUnauthorized: settings.ssl.rejectUnauthorized ?? true,
        ...(settings.ssl.ca === undefined ? {} : { ca: settings.ssl.ca }),
        ...(settings.ssl.cert === undefined ? {} : { cert: settings.ssl.cert }),
        ...(settings.ssl.key === undefined ? {} : { key: Redacted.value(settings.ssl.key) }),
        ...(settings.ssl.serverName === undefined ? {} : { servername: settings.ssl.serverName })
      }
    })
  })
}

const toStorageError = (error: SqlError.SqlError) =>
  new StorageError({ reason: kindOf(error) === "Unavailable" ? "Unavailable" : "Unknown", message: describe("PostgreSQL transaction", error), cause: error })

/**
 * The PostgreSQL `UnitOfWork`: the ambient `sql.withTransaction`.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeUnitOfWork = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return UnitOfWork.of({
    backend: "postgres",
    transaction: (effect) =>
      sql.withTransaction(effect).pipe(
        Effect.mapError((e) => (SqlError.isSqlError(e) ? toStorageError(e) : e))
      ) as Effect.Effect<Effect.Success<typeof effect>, Effect.Error<typeof effect> | StorageError, Effect.Services<typeof effect>>,
    afterCommit: (effect) => sql.afterCommit(effect)
  })
})

/**
 * Every storage port on PostgreSQL, over an existing pool; runs the migrations first.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerStorageWith = (schema: string): Layer.Layer<Storage.Services, SqlError.SqlError, SqlClient.SqlClient | PgClient.PgClient> =>
  Layer.mergeAll(
    Layer.effect(UnitOfWork, makeUnitOfWork),
    PgEventStore.layer,
    PgSnapshotStore.layer,
    PgTransactions.layer,
    PgOutbox.layer(schema),
    PgInbox.layer,
    PgDocumentStore.layer,
    PgLeadership.layer(),
    PgProjectionStore.layer
  ).pipe(Layer.provide(Layer.effectDiscard(migrate(schema))))

/**
 * Every storage port on PostgreSQL with its own pool; the pool is exposed too, for the user's
 * read-model writes in the same transactions.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerStorage = (settings: PostgresOptions): Layer.Layer<Storage.Services | SqlClient.SqlClient | PgClient.PgClient, SqlError.SqlError> =>
  layerStorageWith(settings.schema).pipe(Layer.provideMerge(layer(settings)))
