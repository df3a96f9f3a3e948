import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as Postgres from "../../../src/postgres/Postgres.ts"
import { migrate, migrations } from "../../../src/postgres/internal/Migrations.ts"
import { describePostgres, freshSchema } from "../../support/Services.ts"

const NIL = "00000000-0000-0000-0000-000000000000"

interface PlanNode {
  readonly "Node Type": string
  readonly "Index Name"?: string
  readonly "Index Cond"?: string
  readonly "Rows Removed by Filter"?: number
  readonly "Rows Removed by Index Recheck"?: number
  readonly Plans?: ReadonlyArray<PlanNode>
}

const nodes = (n: PlanNode): ReadonlyArray<PlanNode> => [n, ...(n.Plans ?? []).flatMap(nodes)]

describePostgres("Migrations (real server)", () => {
  const settings = freshSchema("mig")
  const dropSchema = Layer.effectDiscard(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Effect.addFinalizer(() => sql.unsafe(`DROP SCHEMA IF EXISTS "${settings.schema}" CASCADE`).pipe(Effect.ignore))
  }))
  layer(dropSchema.pipe(Layer.provideMerge(Postgres.layer(settings))), { timeout: 60_000 })((it) => {
    const indexes = Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql<{ indexname: string }>`SELECT indexname FROM pg_indexes WHERE schemaname = ${settings.schema} AND tablename = 'minos_snapshots' ORDER BY indexname`).pipe(
        Effect.map((rows) => rows.map((r) => r.indexname))
      )

    it.effect("a database migrated before the snapshot lookup index gets it once, and again is a no-op", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* migrate(settings.schema)
        // put the schema back to how the migrations before this index left it
        const lookup = migrations.find((m) => m.statements.some((s) => s.includes("minos_snapshots_lookup")))!
        yield* sql.unsafe(`DROP INDEX minos_snapshots_lookup`)
        yield* sql.unsafe(`CREATE INDEX minos_snapshots_aggregate ON minos_snapshots (aggregate, transaction_id)`)
        yield* sql`DELETE FROM minos_migrations WHERE id = ${lookup.id}`
        yield* migrate(settings.schema)
        const after = yield* indexes
        assert.include(after, "minos_snapshots_lookup")
        assert.notInclude(after, "minos_snapshots_aggregate")
        yield* migrate(settings.schema)
        assert.deepStrictEqual(yield* indexes, after)
        const applied = yield* sql<{ id: number }>`SELECT id FROM minos_migrations ORDER BY id`
        assert.deepStrictEqual(applied.map((r) => r.id), migrations.map((m) => m.id))
      }))

    it.effect("without table statistics a snapshot lookup by id reads one index entry, not every snapshot of the type", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* migrate(settings.schema)
        yield* sql.unsafe(`ALTER TABLE minos_snapshots SET (autovacuum_enabled = false)`)
        yield* sql.unsafe(`INSERT INTO minos_snapshots (aggregate_id, aggregate, version, document, created_at, updated_at)
          SELECT gen_random_uuid(), 'Exam', 1, '{}'::jsonb, now(), now() FROM generate_series(1, 20000)`)
        const id = (yield* sql<{ id: string }>`SELECT aggregate_id::text AS id FROM minos_snapshots LIMIT 1`)[0]!.id
        const analyzed = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stats WHERE schemaname = ${settings.schema} AND tablename = 'minos_snapshots'`
        assert.strictEqual(analyzed[0]!.n, 0, "the table must have no statistics for this test")
        // the statements PgSnapshotStore.getOption sends: outside a transaction, and inside one
        const lookups = [
          `SELECT * FROM minos_snapshots s WHERE s.aggregate_id = '${id}'::uuid AND s.transaction_id = '${NIL}'::uuid AND s.aggregate = 'Exam'::text`,
          `SELECT * FROM minos_snapshots s WHERE s.aggregate_id = '${id}'::uuid AND s.transaction_id = ANY(ARRAY['${NIL}', '${crypto.randomUUID()}']::uuid[])
             AND s.aggregate = 'Exam'::text ORDER BY array_position(ARRAY['${NIL}', '${crypto.randomUUID()}']::uuid[], s.transaction_id) DESC LIMIT 1`
        ]
        for (const lookup of lookups) {
          const [row] = yield* sql.unsafe<{ "QUERY PLAN": ReadonlyArray<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${lookup}`)
          const plan = nodes(row!["QUERY PLAN"][0]!.Plan)
          const walked = plan.reduce((n, p) => n + (p["Rows Removed by Filter"] ?? 0) + (p["Rows Removed by Index Recheck"] ?? 0), 0)
          assert.strictEqual(walked, 0, `the lookup filtered rows it read: ${JSON.stringify(plan)}`)
          assert.isTrue(plan.some((p) => p["Index Cond"]?.includes("aggregate_id") === true), `no index condition on aggregate_id: ${JSON.stringify(plan)}`)
        }
      }))
  })
})
