/**
 * Event store benchmarks on PostgreSQL: our EventStore / Repository against the raw `pg` driver
 * doing the same statements on a table with the same shape and indexes.
 */
import { Effect, Redacted } from "effect"
import pg from "pg"
import type { PostgresSettings } from "../src/config/MinosConfig.ts"
import * as Postgres from "../src/postgres/Postgres.ts"
import { examFields } from "../test/fixtures/Domain.ts"
import { type Case, concurrently } from "./Harness.ts"
import { batchEvents, createdData, ourStorage } from "./OurStorage.ts"

const uuid = () => crypto.randomUUID()

export const pgSettings = (schema: string): PostgresSettings => ({
  host: process.env["MINOS_TEST_PG_HOST"] ?? "127.0.0.1",
  port: Number(process.env["MINOS_TEST_PG_PORT"] ?? 5432),
  database: process.env["MINOS_TEST_PG_DATABASE"] ?? "minos_test",
  user: "minos",
  password: Redacted.make("min0s"),
  maxConnections: 32,
  connectTimeoutMs: 5_000,
  schema
})

/** Cases over a fresh schema; `pool` is the raw driver on the same database. */
export const postgresCases = (schema: string) =>
  Effect.gen(function*() {
    const settings = pgSettings(schema)
    const pool = new pg.Pool({
      host: settings.host,
      port: settings.port,
      database: settings.database,
      user: settings.user,
      password: Redacted.value(settings.password),
      max: 32,
      options: `-c search_path=${schema}`
    })
    yield* Effect.addFinalizer(() => Effect.promise(() => pool.end()))
    yield* Effect.promise(() =>
      pool.query(`CREATE TABLE IF NOT EXISTS raw_events (LIKE minos_events INCLUDING ALL);
                  CREATE TABLE IF NOT EXISTS raw_snapshots (LIKE minos_snapshots INCLUDING ALL);
                  CREATE TABLE IF NOT EXISTS raw_outbox (LIKE minos_outbox INCLUDING ALL);`)
    )
    const ours = yield* ourStorage
    const data = createdData

    const appendRaw = (concurrency: number) => ({
      run: (ops: number) =>
        concurrently(ops, concurrency, () =>
          Effect.promise(() =>
            pool.query(
              `INSERT INTO raw_events (aggregate_id, aggregate, version, type, data, metadata, created_at)
               VALUES ($1, 'Exam', 1, 'ExamCreated', $2, '{}', now())`,
              [uuid(), JSON.stringify(data)]
            )))
    })

    const batchRaw = {
      run: (ops: number) =>
        Effect.promise(async () => {
          for (let done = 0; done < ops; done += 1000) {
            const id = uuid()
            const events = batchEvents(1000)
            const values: Array<string> = []
            const params: Array<unknown> = [id]
            events.forEach((e, i) => {
              params.push(i + 1, JSON.stringify(e.data))
              values.push(`($1, 'Exam', $${params.length - 1}, 'ExamUpdated', $${params.length}, '{}', now())`)
            })
            await pool.query(`INSERT INTO raw_events (aggregate_id, aggregate, version, type, data, metadata, created_at) VALUES ${values.join(",")}`, params)
          }
        })
    }

    // the whole command: load snapshot + events, append, upsert snapshot, stage the outbox row, commit
    const commandRaw = (concurrency: number) => ({
      run: (ops: number) =>
        concurrently(ops, concurrency, () =>
          Effect.promise(async () => {
            const id = uuid()
            const client = await pool.connect()
            try {
              await client.query("BEGIN")
              await client.query(`SELECT * FROM raw_snapshots WHERE aggregate_id = $1`, [id])
              await client.query(`SELECT * FROM raw_events WHERE aggregate_id = $1 AND version > 0 ORDER BY version`, [id])
              await client.query(
                `INSERT INTO raw_events (aggregate_id, aggregate, version, type, data, metadata, created_at) VALUES ($1, 'Exam', 1, 'ExamCreated', $2, '{}', now())`,
                [id, JSON.stringify(data)]
              )
              await client.query(
                `INSERT INTO raw_snapshots (aggregate_id, aggregate, version, document, deleted, created_at, updated_at) VALUES ($1, 'Exam', 1, $2, false, now(), now())
                 ON CONFLICT (aggregate_id, transaction_id) DO UPDATE SET version = EXCLUDED.version, document = EXCLUDED.document`,
                [id, JSON.stringify(examFields)]
              )
              await client.query(`INSERT INTO raw_outbox (topic, key, value, headers) VALUES ('ExamCreated', $1, $2, '{}')`, [id, JSON.stringify({ content: data })])
              await client.query("COMMIT")
            } finally {
              client.release()
            }
          }))
    })

    const cases: ReadonlyArray<Case> = [
      ...[1, 8, 32].map((c): Case => ({
        group: "postgres",
        name: `append 1 event, concurrency ${c}`,
        ops: c === 1 ? 1000 : 4000,
        unit: "append",
        ours: ours.append(c),
        raw: appendRaw(c),
        goalRatio: 0.5
      })),
      { group: "postgres", name: "append batch of 1,000 events", ops: 20_000, unit: "event", ours: ours.batch, raw: batchRaw, goalRate: 10_000 },
      ...[1, 32].map((c): Case => ({
        group: "postgres",
        name: `command (load+append+snapshot+outbox), conc. ${c}`,
        ops: c === 1 ? 500 : 2000,
        unit: "command",
        ours: ours.command(c),
        raw: commandRaw(c)
      }))
    ]
    return cases
  })

export const postgresLayer = (schema: string) => Postgres.layerStorage(pgSettings(schema))

/** Drops benchmark schemas (after the pools using them were closed); a failure is only reported. */
export const dropSchemas = (schemas: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    if (schemas.length === 0) return
    const s = pgSettings("public")
    const client = new pg.Client({ host: s.host, port: s.port, database: s.database, user: s.user, password: Redacted.value(s.password) })
    try {
      await client.connect()
      for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    } catch (e) {
      console.error(`could not drop the benchmark schemas ${schemas.join(", ")}: ${String(e)}`)
    } finally {
      await client.end().catch(() => undefined)
    }
  })
