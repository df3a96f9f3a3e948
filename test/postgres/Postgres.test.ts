import { assert, it, layer } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { SqlClient } from "effect/sql"
import * as Postgres from "../../src/postgres/Postgres.ts"
import { describePostgres, postgres } from "../support/Services.ts"

describePostgres("Postgres (real server)", () => {
  layer(Postgres.layer(postgres), { timeout: 30_000 })((it) => {
    const table = `smoke_${process.pid}_${Date.now()}`

    it.effect("creates a table, inserts and reads back", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE ${sql(table)} (id int primary key, name text not null)`
        yield* sql`INSERT INTO ${sql(table)} ${sql.insert([{ id: 1, name: "a" }, { id: 2, name: "b" }])}`
        const rows = yield* sql<{ id: number; name: string }>`SELECT id, name FROM ${sql(table)} ORDER BY id`
        assert.deepStrictEqual(rows.map((r) => r.name), ["a", "b"])
      }))

    it.effect("rolls a failed transaction back", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const exit = yield* sql.withTransaction(
          Effect.gen(function*() {
            yield* sql`INSERT INTO ${sql(table)} ${sql.insert({ id: 3, name: "c" })}`
            return yield* Effect.fail("boom" as const)
          })
        ).pipe(Effect.exit)
        assert.isTrue(Exit.isFailure(exit))
        const rows = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(table)} WHERE id = 3`
        assert.strictEqual(rows[0]!.n, 0)
      }))

    it.effect("a unique violation is a typed SqlError reason", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const error = yield* sql`INSERT INTO ${sql(table)} ${sql.insert({ id: 1, name: "dup" })}`.pipe(Effect.flip)
        assert.strictEqual(error.reason._tag, "UniqueViolation")
        yield* sql`DROP TABLE ${sql(table)}`
      }))
  })
})
