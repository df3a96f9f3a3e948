/**
 * The Emmett peer (`@event-driven-io/emmett-postgresql`) on the same PostgreSQL server, in a database
 * of its own created for the run (Emmett 0.42 checks whether its SQL functions exist by name across
 * the whole database, so a second schema in one database finds another schema's functions and never
 * creates its own), ours in a fresh schema, doing the same workload: per stream one create and then `UPDATES` commands, each
 * load → decide → append one event, streams at concurrency 1/8/32. Ours is `Repository` (events +
 * snapshot + outbox row in one transaction, as a service runs it); Emmett is its `CommandHandler`
 * (read the stream, decide, append with the expected version) on a `pg` pool of the same size.
 *
 * Also: a batch append of 1,000 events (our `EventStore.append` vs Emmett's `appendToStream`) and a
 * raw `pg` one-row INSERT loop at concurrency 1 (autocommit: one commit per row), the machine's
 * commit rate, against our command at concurrency 1.
 */
import { CommandHandler } from "@event-driven-io/emmett"
import { getPostgreSQLEventStore, type PostgresEventStore } from "@event-driven-io/emmett-postgresql"
import { Effect, Redacted } from "effect"
import pg from "pg"
import * as Entity from "../src/domain/Entity.ts"
import { EventStore } from "../src/eventstore/EventStore.ts"
import * as Repository from "../src/command/Repository.ts"
import { Exam, examFields } from "../test/fixtures/Domain.ts"
import { type Case, concurrently, type Measure } from "./Harness.ts"
import { batchEvents } from "./OurStorage.ts"
import { pgSettings } from "./StorageBench.ts"

/** Both sides' pool size (ours through `Postgres.layerStorage`, Emmett's `pg.Pool`). */
export const POOL = 16

/** Commands after the create, per stream. */
export const UPDATES = 4

type ExamEvent =
  | { type: "ExamCreated"; data: { fields: Record<string, unknown> } }
  | { type: "ExamUpdated"; data: { diff: Array<{ name: string; value: unknown }> } }
type ExamState = { readonly fields: Record<string, unknown> | null }

// Emmett's side of the domain: the same events our Entity produces, a state that is the fields, and
// decisions that refuse a second create / an update of a missing exam (as Entity's decide does).
const evolve = (state: ExamState, event: ExamEvent): ExamState =>
  event.type === "ExamCreated"
    ? { fields: event.data.fields }
    : { fields: { ...state.fields, ...Object.fromEntries(event.data.diff.map((d) => [d.name, d.value])) } }
const handle = CommandHandler<ExamState, ExamEvent>({ evolve, initialState: () => ({ fields: null }) })
const create = (fields: Record<string, unknown>) => (state: ExamState): ExamEvent => {
  if (state.fields !== null) throw new Error("exam exists")
  return { type: "ExamCreated", data: { fields } }
}
const update = (seats: number) => (state: ExamState): ExamEvent => {
  if (state.fields === null) throw new Error("no such exam")
  return { type: "ExamUpdated", data: { diff: [{ name: "seats", value: seats }] } }
}

const connectionString = (schema: string, database?: string) => {
  const s = pgSettings(schema)
  return `postgresql://${s.user}:${Redacted.value(s.password)}@${s.host}:${s.port}/${database ?? s.database}?options=${encodeURIComponent(`-c search_path=${schema}`)}`
}

/**
 * Drops `database` once its connections are gone. Not `WITH (FORCE)`: `pool.end()` resolves before
 * the sockets close, and a connection terminated under a pg pool is an unhandled error event.
 */
const dropDatabase = async (admin: pg.Pool, database: string) => {
  for (let attempt = 0; ; attempt++) {
    try {
      return await admin.query(`DROP DATABASE IF EXISTS "${database}"`)
    } catch (e) {
      if ((e as { code?: string }).code !== "55006" || attempt >= 20) {
        console.error(`could not drop the Emmett database ${database}: ${String(e)}`)
        return
      }
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}

/** Bounds a finalizer: a pool whose client leaked (a failed run) would wait forever in `end`. */
const bounded = (f: () => Promise<unknown>) => Effect.promise(() => f().catch(() => undefined)).pipe(Effect.timeout("5 seconds"), Effect.ignore)

/** Runs `ops` commands as streams of one create + UPDATES updates, `concurrency` streams at once. */
const streams = (ops: number, concurrency: number, stream: (id: string, commands: number) => Effect.Effect<void, unknown>) =>
  concurrently(Math.max(1, Math.round(ops / (UPDATES + 1))), concurrency, () => stream(crypto.randomUUID(), UPDATES))

/**
 * The cases; ours runs on the storage layer the caller provides (a fresh schema), Emmett in the
 * database `emmettDatabase` (created here, dropped with the scope), the raw loop in `rawSchema`
 * (the caller drops it).
 */
export const emmettCases = (emmettDatabase: string, rawSchema: string, quick: boolean) =>
  Effect.gen(function*() {
    const admin = new pg.Pool({ connectionString: connectionString("public"), max: 1 })
    const url = connectionString("public", emmettDatabase)
    // Emmett takes a pg pool of its own, the same size as ours
    const emmettPool = new pg.Pool({ connectionString: url, max: POOL })
    const rawPool = new pg.Pool({ connectionString: connectionString(rawSchema), max: 2 })
    let store: PostgresEventStore | undefined
    // one finalizer, in order: the pools, then the database, then the admin connection
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* bounded(() => rawPool.end())
        if (store !== undefined) yield* bounded(() => store!.close())
        yield* bounded(() => emmettPool.end())
        yield* bounded(() => dropDatabase(admin, emmettDatabase))
        yield* bounded(() => admin.end())
      })
    )
    // databases a crashed run left behind (one still in use by a run in progress stays)
    const left = yield* Effect.promise(() => admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_emmett\\_%'`))
    for (const { datname } of left.rows) yield* bounded(() => admin.query(`DROP DATABASE "${datname}"`))
    yield* Effect.promise(() => admin.query(`CREATE DATABASE "${emmettDatabase}"`))
    yield* Effect.promise(() =>
      admin.query(`CREATE SCHEMA IF NOT EXISTS "${rawSchema}";
                   CREATE TABLE IF NOT EXISTS "${rawSchema}".raw_commits (id bigserial PRIMARY KEY, aggregate_id uuid NOT NULL, data jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`)
    )
    store = getPostgreSQLEventStore(url, { connectionOptions: { connectionString: url, pool: emmettPool } as never })
    const emmettStore = store
    // Emmett creates its schema on first use (its explicit `schema.migrate()` fails on 0.42.0 with a
    // fresh schema: "function emt_add_partition(unknown) does not exist")
    yield* Effect.promise(() => handle(emmettStore, crypto.randomUUID(), create({ ...examFields })))

    const exams = yield* Repository.make(Exam, { publish: true })
    const events = yield* EventStore

    const ours = (concurrency: number): Measure => ({
      run: (ops) =>
        streams(ops, concurrency, (_, commands) =>
          Effect.gen(function*() {
            const { id } = yield* exams.create(Entity.create(examFields))
            for (let i = 0; i < commands; i++) yield* exams.handle(id, Entity.update({ seats: i + 1 }))
          }))
    })
    const emmett = (concurrency: number): Measure => ({
      run: (ops) =>
        streams(ops, concurrency, (id, commands) =>
          Effect.promise(async () => {
            await handle(emmettStore, id, create({ ...examFields }))
            for (let i = 0; i < commands; i++) await handle(emmettStore, id, update(i + 1))
          }))
    })
    const rawCommit: Measure = {
      run: (ops) =>
        Effect.promise(async () => {
          const data = JSON.stringify({ fields: examFields })
          for (let i = 0; i < ops; i++) await rawPool.query(`INSERT INTO raw_commits (aggregate_id, data) VALUES ($1, $2)`, [crypto.randomUUID(), data])
        })
    }
    const oursBatch: Measure = {
      run: (ops) =>
        Effect.gen(function*() {
          for (let done = 0; done < ops; done += 1000) {
            yield* events.append({ aggregate: "Exam", aggregateId: crypto.randomUUID(), expectedVersion: 0, now: Date.now(), events: batchEvents(1000) })
          }
        })
    }
    const emmettBatch: Measure = {
      run: (ops) =>
        Effect.promise(async () => {
          for (let done = 0; done < ops; done += 1000) {
            const batch = batchEvents(1000).map((e) => ({ type: e.type, data: e.data }))
            await emmettStore.appendToStream(crypto.randomUUID(), batch, { expectedStreamVersion: 0n })
          }
        })
    }

    const scale = quick ? 0.25 : 1
    const n = (x: number) => Math.max(UPDATES + 1, Math.round(x * scale))
    const cases: ReadonlyArray<Case> = [
      ...[1, 8, 32].map((c): Case => ({
        group: "emmett",
        name: `command: create + ${UPDATES} updates per stream, conc. ${c}`,
        ops: n(c === 1 ? 250 : c === 8 ? 800 : 1600),
        unit: "command",
        ours: ours(c),
        raw: emmett(c),
        peer: "Emmett",
        goalRatio: 1.2
      })),
      {
        group: "emmett",
        name: `command: create + ${UPDATES} updates, conc. 1`,
        ops: n(250),
        unit: "command",
        ours: ours(1),
        raw: rawCommit,
        peer: "raw pg INSERT+COMMIT",
        warmupOps: 50,
        goalRatio: 0.5
      },
      {
        group: "emmett",
        name: "append batch of 1,000 events",
        ops: quick ? 5000 : 20_000,
        unit: "event",
        ours: oursBatch,
        raw: emmettBatch,
        peer: "Emmett",
        warmupOps: 2000
      }
    ]
    return cases
  })
