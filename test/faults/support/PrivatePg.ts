/**
 * The fault suite's own PostgreSQL cluster (`scripts/pg-private.sh`, port 55432): the tests start,
 * stop and restart it; the machine's server on 5432 is never touched. Also a plain `pg` pool for the
 * checker, which reads the stores with SQL of its own.
 */
import { Effect, Scope } from "effect"
import { execFile } from "node:child_process"
import pg from "pg"

export const port = Number(process.env["MINOS_PG_PRIVATE_PORT"] ?? 55432)
export const host = "127.0.0.1"

const script = (...args: ReadonlyArray<string>) =>
  Effect.callback<string, Error>((resume) => {
    execFile("bash", ["scripts/pg-private.sh", ...args], { env: { ...process.env, MINOS_PG_PRIVATE_PORT: String(port) }, timeout: 120_000 }, (error, stdout, stderr) => {
      if (error) resume(Effect.fail(new Error(`pg-private.sh ${args.join(" ")} failed: ${stderr || error.message}`)))
      else resume(Effect.succeed(stdout.trim()))
    })
  })

/** Initialises (once) and starts the cluster, with role minos and the example databases. */
export const up = script("up")
/** Stops it: `fast` disconnects every session (57P01), `immediate` is a crash. */
export const stop = (mode: "fast" | "immediate" = "fast") => script("stop", mode)
/** Starts it again and waits until it answers. */
export const start = script("start")

/** `MINOS_*` variables pointing a service's storage at the private cluster, in `schema`. */
export const serviceEnv = (database: string, schema: string): Record<string, string> => ({
  MINOS_STORAGE_BACKEND: "postgres",
  MINOS_STORAGE_POSTGRES_HOST: host,
  MINOS_STORAGE_POSTGRES_PORT: String(port),
  MINOS_STORAGE_POSTGRES_DATABASE: database,
  MINOS_STORAGE_POSTGRES_SCHEMA: schema,
  MINOS_STORAGE_POSTGRES_CONNECT_TIMEOUT_MS: "2000"
})

/** A plain client on `database`, closed with the scope. */
export const pool = (database: string): Effect.Effect<pg.Pool, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const p = new pg.Pool({ host, port, database, user: "minos", password: "min0s", max: 4, connectionTimeoutMillis: 5_000 })
      // a pool client dropped by a stopped server must not crash the test process
      p.on("error", () => {})
      return p
    }),
    (p) => Effect.promise(() => p.end())
  )

/** Rows of one query. */
export const query = <R extends Record<string, unknown>>(p: pg.Pool, text: string, values: ReadonlyArray<unknown> = []) =>
  Effect.promise(() => p.query<R>(text, [...values]).then((r) => r.rows))

/** Drops the schemas a run made (the data folder is kept between runs). */
export const dropSchema = (p: pg.Pool, schema: string) => query(p, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`).pipe(Effect.ignore)
