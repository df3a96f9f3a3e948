/**
 * The PostgreSQL connection every PostgreSQL backend shares: one `@effect/sql-pg` pool built from the
 * config's `storage.postgres` settings, exposed as `SqlClient` (and `PgClient` for LISTEN/NOTIFY).
 * Sharing the pool is what lets events, snapshots, outbox, inbox and the user's read-model writes
 * join one ambient `sql.withTransaction`.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Layer } from "effect"
import type { SqlClient, SqlError } from "effect/sql"
import { MinosConfig, type PostgresSettings } from "../config/MinosConfig.ts"

/**
 * A pool for the given settings.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (settings: PostgresSettings): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError.SqlError> =>
  PgClient.layer({
    host: settings.host,
    port: settings.port,
    database: settings.database,
    username: settings.user,
    password: settings.password,
    maxConnections: settings.maxConnections,
    connectTimeout: Duration.millis(settings.connectTimeoutMs),
    applicationName: "effect-minos"
  })

/**
 * The pool for `storage.postgres` (or the saga store's settings when storage is LMDB but sagas
 * are on PostgreSQL).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerFromConfig: Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError.SqlError, MinosConfig> = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* MinosConfig
    const settings = config.storage.backend === "postgres"
      ? config.storage.postgres
      : config.saga.storage.backend === "postgres"
      ? config.saga.storage.postgres
      : undefined
    if (settings === undefined) return yield* Effect.die(new Error("Postgres.layerFromConfig: the config selects no PostgreSQL backend"))
    return layer(settings)
  })
)
