/**
 * Command cost against the size of what it reads, on PostgreSQL, at concurrency 1:
 *
 * - stream length: one update command on an exam whose stream holds 10 → 10k events, with the
 *   snapshot current (the load reads the snapshot and nothing after it) and without one (the
 *   snapshot row is deleted, untimed, before every command, so the load folds the whole stream);
 *   each length against the stream of 10.
 * - snapshots of one type: the Emmett workload (create + 4 updates per stream) on a fresh schema
 *   holding 1k vs 100k snapshots (and one event each) of the same type, never ANALYZEd (the tables'
 *   autovacuum is off), so the planner has no statistics: the cost should not grow with the table.
 */
import { type Context, Effect, Layer, Redacted } from "effect"
import pg from "pg"
import * as Entity from "../src/domain/Entity.ts"
import { EventStore } from "../src/eventstore/EventStore.ts"
import * as Repository from "../src/command/Repository.ts"
import type * as Storage from "../src/storage/Storage.ts"
import { Exam, examFields } from "../test/fixtures/Domain.ts"
import { UPDATES } from "./EmmettBench.ts"
import { type Case, concurrently, type Measure } from "./Harness.ts"
import { createdData } from "./OurStorage.ts"
import { pgSettings, postgresLayer } from "./StorageBench.ts"

const poolFor = (schema: string) => {
  const s = pgSettings(schema)
  return new pg.Pool({ host: s.host, port: s.port, database: s.database, user: s.user, password: Redacted.value(s.password), max: 2, options: `-c search_path=${schema}` })
}

/** The stream-length cases, on the storage the caller provides (schema `schema`). */
export const streamCases = (schema: string, quick: boolean) =>
  Effect.gen(function*() {
    const pool = poolFor(schema)
    yield* Effect.addFinalizer(() => Effect.promise(() => pool.end()))
    const store = yield* EventStore
    const exams = yield* Repository.make(Exam, { publish: true })

    /** An exam with `length` events, appended in batches (untimed), and no snapshot. */
    const seed = (length: number) =>
      Effect.gen(function*() {
        const id = crypto.randomUUID()
        let version = 0
        while (version < length) {
          const n = Math.min(1000, length - version)
          const events = Array.from({ length: n }, (_, i) =>
            version + i === 0
              ? { type: "ExamCreated", data: createdData }
              : { type: "ExamUpdated", data: { diff: [{ name: "seats", value: version + i }] } })
          yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: version, now: Date.now(), events })
          version += n
        }
        return id
      })

    let seats = 0
    const command = (id: string) => exams.handle(id, Entity.update({ seats: ++seats }))
    const withSnapshot = (id: string): Measure => ({
      run: (ops) => Effect.gen(function*() {
        for (let i = 0; i < ops; i++) yield* command(id)
      })
    })
    const withoutSnapshot = (id: string): Measure => ({
      run: (ops) =>
        Effect.gen(function*() {
          let ms = 0
          for (let i = 0; i < ops; i++) {
            yield* Effect.promise(() => pool.query(`DELETE FROM minos_snapshots WHERE aggregate_id = $1`, [id]))
            const t = performance.now()
            yield* command(id)
            ms += performance.now() - t
          }
          return ms
        })
    })

    const lengths = quick ? [10, 1000] : [10, 100, 1000, 10_000]
    const ids = new Map<number, { snap: string; bare: string }>()
    for (const length of lengths) {
      const snap = yield* seed(length)
      yield* command(snap) // writes the current snapshot
      ids.set(length, { snap, bare: yield* seed(length) })
    }
    const base = ids.get(10)!
    const cases: Array<Case> = []
    for (const length of lengths) {
      const { bare, snap } = ids.get(length)!
      const shorter = length === 10 ? undefined : base
      cases.push({
        group: "stream",
        name: `command on a stream of ${length} events, current snapshot`,
        ops: quick ? 20 : 100,
        unit: "command",
        ours: withSnapshot(snap),
        ...(shorter === undefined ? {} : { raw: withSnapshot(shorter.snap), peer: "stream of 10" })
      })
      cases.push({
        group: "stream",
        name: `command on a stream of ${length} events, no snapshot`,
        ops: quick ? 5 : length >= 10_000 ? 10 : length >= 1000 ? 40 : 100,
        warmupOps: 2,
        unit: "command",
        ours: withoutSnapshot(bare),
        ...(shorter === undefined ? {} : { raw: withoutSnapshot(shorter.bare), peer: "stream of 10" })
      })
    }
    return cases
  })

/**
 * Fills `schema` (migrated, empty) with `count` exams: one snapshot and one event each, in one
 * statement, and turns autovacuum off on the tables so they stay without statistics.
 */
const fill = (schema: string, count: number) =>
  Effect.promise(async () => {
    const pool = poolFor(schema)
    try {
      await pool.query(`ALTER TABLE minos_snapshots SET (autovacuum_enabled = false); ALTER TABLE minos_events SET (autovacuum_enabled = false)`)
      const document = JSON.stringify({ ...examFields })
      await pool.query(
        `WITH ids AS (SELECT gen_random_uuid() AS id FROM generate_series(1, $1::int)),
              s AS (INSERT INTO minos_snapshots (aggregate_id, aggregate, version, document, deleted, created_at, updated_at)
                    SELECT id, 'Exam', 1, $2::jsonb, false, now(), now() FROM ids RETURNING aggregate_id)
         INSERT INTO minos_events (aggregate_id, aggregate, version, type, data, created_at)
         SELECT aggregate_id, 'Exam', 1, 'ExamCreated', $3::jsonb, now() FROM s`,
        [count, document, JSON.stringify(createdData)]
      )
    } finally {
      await pool.end()
    }
  })

/** The command measure on a storage context built elsewhere (one per schema). */
const commandsOn = (context: Context.Context<Storage.Services>) =>
  Effect.gen(function*() {
    const exams = yield* Repository.make(Exam, { publish: true })
    return {
      run: (ops: number) =>
        concurrently(Math.max(1, Math.round(ops / (UPDATES + 1))), 1, () =>
          Effect.gen(function*() {
            const { id } = yield* exams.create(Entity.create(examFields))
            for (let i = 0; i < UPDATES; i++) yield* exams.handle(id, Entity.update({ seats: i + 1 }))
          }))
    } satisfies Measure
  }).pipe(Effect.provide(context))

/** The snapshot-scaling case: `small` vs `large` snapshots of one type, each in its own fresh schema. */
export const snapshotScalingCase = (schemas: { readonly small: string; readonly large: string }, quick: boolean) =>
  Effect.gen(function*() {
    const sizes = { small: 1000, large: quick ? 20_000 : 100_000 }
    const small = yield* Layer.build(postgresLayer(schemas.small))
    const large = yield* Layer.build(postgresLayer(schemas.large))
    yield* fill(schemas.small, sizes.small)
    yield* fill(schemas.large, sizes.large)
    const k = (n: number) => `${n / 1000}k`
    return {
      group: "snapshots",
      name: `command, ${k(sizes.large)} snapshots of the type, no statistics`,
      ops: quick ? 50 : 250,
      unit: "command",
      ours: yield* commandsOn(large),
      raw: yield* commandsOn(small),
      peer: `${k(sizes.small)} snapshots`,
      // flat within 1.5×: the large table's rate at least 1/1.5 of the small one's
      goalRatio: 0.67
    } satisfies Case
  })
