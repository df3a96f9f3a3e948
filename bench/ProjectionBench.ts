/**
 * Projection benchmarks on both storage backends: the async follower applying the event log
 * (events/s; each event: lock the mark, read and write the document, set the mark, in transactions of
 * 500 with the checkpoint) against the raw driver doing the same upserts in the same transactions;
 * and the time of a rebuild over 100k events (MINOS_BENCH_REBUILD_EVENTS).
 */
import { type Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { open } from "lmdb"
import pg from "pg"
import { EventStore } from "../src/eventstore/EventStore.ts"
import * as Lmdb from "../src/lmdb/Lmdb.ts"
import * as Projection from "../src/projection/Projection.ts"
import * as ProjectionRunner from "../src/projection/ProjectionRunner.ts"
import { ProjectionStore } from "../src/readmodel/ProjectionStore.ts"
import type * as Storage from "../src/storage/Storage.ts"
import { Exam, examFields } from "../test/fixtures/Domain.ts"
import type { Case, Measure } from "./Harness.ts"
import { tempDir } from "./LmdbBench.ts"
import { pgSettings, postgresLayer } from "./StorageBench.ts"

const rebuildEvents = Number(process.env["MINOS_BENCH_REBUILD_EVENTS"] ?? 100_000)
const perAggregate = 100

const View = Schema.Struct({ uuid: Schema.String, version: Schema.Int, title: Schema.String, seats: Schema.optional(Schema.Int) })

let names = 0
const projection = () =>
  Projection.make({
    name: `bench${Date.now().toString(36)}${names++}`,
    aggregate: Exam,
    collection: `bench${Date.now().toString(36)}${names}`,
    schema: View,
    on: {
      ExamCreated: (_, e) => Option.some({ uuid: e.uuid, version: e.version, title: String(e.data.fields["title"]) }),
      ExamUpdated: (v, e) => Option.map(v, (x) => ({ ...x, version: e.version, seats: e.version })),
      ExamDeleted: () => Option.none()
    }
  })

/** `n` events: aggregates of one create and `perAggregate - 1` updates, appended in batches. */
const populate = (n: number) =>
  Effect.gen(function*() {
    const store = yield* EventStore
    for (let done = 0; done < n; done += perAggregate) {
      const events = Array.from({ length: perAggregate }, (_, i) =>
        i === 0 ? { type: "ExamCreated", data: { fields: examFields } } : { type: "ExamUpdated", data: { diff: [{ name: "seats", value: i }] } })
      yield* store.append({ aggregate: "Exam", aggregateId: crypto.randomUUID(), expectedVersion: 0, now: Date.now(), events })
    }
  })

/** A fresh projection follows the log from its start until it has applied `ops` events. */
const follow: Measure = {
  run: (ops) =>
    needsStorage(Effect.gen(function*() {
      const p = projection()
      let applied = 0
      while (applied < ops) {
        const n = yield* ProjectionRunner.step(p, { batchSize: 500 })
        if (n === 0) break
        applied += n
      }
    }))
}

/** A rebuild of a live projection over the whole log; returns its elapsed ms. */
const rebuild = (p: Projection.Projection.Any): Measure => ({
  run: () =>
    needsStorage(Effect.gen(function*() {
      yield* ProjectionRunner.requestRebuild(p.name)
      const start = performance.now()
      yield* ProjectionRunner.step(p, { batchSize: 500 }).pipe(
        Effect.andThen(Projection.stateOf(p.name)),
        Effect.repeat({ until: ({ state }) => state.rebuild === undefined })
      )
      return performance.now() - start
    }))
})

/** A measure's effect runs with the storage provided by {@link provideCase}. */
const needsStorage = <A>(effect: Effect.Effect<A, unknown, Storage.Services>) => effect as unknown as Effect.Effect<A, unknown>

const cases = (backend: string, raw: Measure, live: Projection.Projection.Any) =>
  [
    { group: "projection", name: `${backend}: follower applies the log (500/tx)`, ops: 5_000, unit: "event", ours: follow, raw, warmupOps: 500 },
    { group: "projection", name: `${backend}: rebuild of ${rebuildEvents} events (one run)`, ops: rebuildEvents, unit: "event", ours: rebuild(live), warmupOps: 0, rounds: 1 }
  ] satisfies ReadonlyArray<Case>

/** Registers a live projection over the populated log (caught up, so the rebuild case measures a rebuild). */
const prepare = Effect.gen(function*() {
  yield* populate(rebuildEvents)
  const live = projection()
  yield* registerOnly(live)
  return live
})

const registerOnly = (p: Projection.Projection.Any) =>
  Effect.gen(function*() {
    const store = yield* ProjectionStore
    const found = yield* store.getState(ProjectionRunner.registryKey)
    const before = Option.match(found, { onNone: () => [], onSome: (r) => (r.value as { projections: Array<unknown> }).projections })
    yield* store.putState(ProjectionRunner.registryKey, { projections: [...before, { name: p.name, aggregate: p.aggregate, mode: p.mode, source: p.source, collection: p.collection }] }, Option.match(found, { onNone: () => 0, onSome: (r) => r.revision }))
  })

/** The projection cases on PostgreSQL (schema `schema`), with the raw `pg` driver doing the same upserts. */
export const postgresProjectionCases = (schema: string) =>
  Effect.gen(function*() {
    const storage = yield* Layer.build(postgresLayer(schema))
    const settings = pgSettings(schema)
    const pool = new pg.Pool({ host: settings.host, port: settings.port, database: settings.database, user: settings.user, password: Redacted.value(settings.password), max: 4, options: `-c search_path=${schema}` })
    yield* Effect.addFinalizer(() => Effect.promise(() => pool.end()))
    yield* Effect.promise(() => pool.query(`CREATE TABLE IF NOT EXISTS raw_docs (LIKE minos_documents INCLUDING ALL); CREATE TABLE IF NOT EXISTS raw_marks (LIKE minos_projection_marks INCLUDING ALL)`))
    const raw: Measure = {
      run: (ops) =>
        Effect.promise(async () => {
          const client = await pool.connect()
          try {
            const id = crypto.randomUUID()
            for (let done = 0; done < ops; done += 500) {
              await client.query("BEGIN")
              for (let i = 0; i < 500 && done + i < ops; i++) {
                const v = (done + i) % perAggregate + 1
                const doc = v === 1 ? crypto.randomUUID() : id
                await client.query(`INSERT INTO raw_marks (projection, aggregate_id, version) VALUES ('raw', $1, 0) ON CONFLICT (projection, aggregate_id) DO UPDATE SET version = raw_marks.version RETURNING version`, [doc])
                await client.query(`SELECT document FROM raw_docs WHERE collection = 'raw' AND id = $1`, [doc])
                await client.query(`INSERT INTO raw_docs (collection, id, document, updated_at) VALUES ('raw', $1, $2, now()) ON CONFLICT (collection, id) DO UPDATE SET document = EXCLUDED.document, updated_at = EXCLUDED.updated_at`, [doc, JSON.stringify({ uuid: doc, version: v, title: "t" })])
                await client.query(`UPDATE raw_marks SET version = $2 WHERE projection = 'raw' AND aggregate_id = $1`, [doc, v])
              }
              await client.query("COMMIT")
            }
          } finally {
            client.release()
          }
        })
    }
    const live = yield* prepare.pipe(Effect.provide(storage))
    return cases("postgres", raw, live).map((c) => provideCase(c, storage))
  })

/** The projection cases on LMDB, with the raw lmdb driver doing the same upserts. */
export const lmdbProjectionCases = Effect.gen(function*() {
  const storage = yield* Layer.build(Lmdb.layer({ path: yield* tempDir("bench-projection-") }))
  const rawDir = yield* tempDir("bench-projection-raw-")
  const root = open({ path: rawDir })
  yield* Effect.addFinalizer(() => Effect.promise(() => root.close()))
  const docs = root.openDB<unknown, Array<string>>({ name: "docs" })
  const marks = root.openDB<number, Array<string>>({ name: "marks" })
  const raw: Measure = {
    run: (ops) =>
      Effect.sync(() => {
        let id = crypto.randomUUID()
        for (let done = 0; done < ops; done += 500) {
          root.transactionSync(() => {
            for (let i = 0; i < 500 && done + i < ops; i++) {
              const v = (done + i) % perAggregate + 1
              if (v === 1) id = crypto.randomUUID()
              marks.get(["raw", id])
              docs.get(["raw", id])
              docs.putSync(["raw", id], { d: { uuid: id, version: v, title: "t" }, u: Date.now() })
              marks.putSync(["raw", id], v)
            }
          })
        }
      })
  }
  const live = yield* prepare.pipe(Effect.provide(storage))
  return cases("lmdb", raw, live).map((c) => provideCase(c, storage))
})

const provideCase = (c: Case, storage: Context.Context<Storage.Services>): Case => ({
  ...c,
  ours: { run: (ops) => (c.ours.run(ops) as Effect.Effect<void | number, unknown, Storage.Services>).pipe(Effect.provide(storage)) }
})


/** Both backends' cases (PostgreSQL when `schema` is given; the caller drops the schema). */
export const projectionCases = (schema: string | undefined) =>
  Effect.gen(function*() {
    const out: Array<Case> = []
    if (schema !== undefined) out.push(...(yield* postgresProjectionCases(schema)))
    out.push(...(yield* lmdbProjectionCases))
    return out
  })
