import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as Leadership from "../../src/cluster/Leadership.ts"
import * as PgLeadership from "../../src/postgres/PgLeadership.ts"
import * as Postgres from "../../src/postgres/Postgres.ts"
import { describePostgres, freshSchema } from "../support/Services.ts"
import { suite } from "./LeadershipSuite.ts"

const fast = { retryInterval: "50 millis", checkInterval: "100 millis" } as const

suite("local", {
  make: Effect.map(Leadership.makeLocal(fast), (one) => [one, one] as const)
})

describePostgres("PostgreSQL", () => {
  const settings = freshSchema("lead")
  // each replica has its own pool, as two processes would
  const replica = Effect.gen(function*() {
    const context = yield* Layer.build(PgLeadership.layer(fast).pipe(Layer.provideMerge(Postgres.layer(settings))))
    return yield* Effect.provide(Leadership.Leadership, context)
  })
  suite("postgres", {
    make: Effect.all([replica, replica]),
    cutOff: (name) =>
      Effect.gen(function*() {
        const context = yield* Layer.build(Postgres.layer({ ...settings, schema: "public" }))
        const sql = yield* Effect.provide(SqlClient.SqlClient, context)
        // the session holding the lease of `name` in this schema
        yield* sql`SELECT pg_terminate_backend(l.pid) FROM pg_locks l
          WHERE l.locktype = 'advisory' AND l.granted
            AND ((l.classid::bigint << 32) | l.objid::bigint) = (hashtextextended('effect-minos:leader:' || ${settings.schema} || ':' || ${name}, 0) & x'FFFFFFFFFFFFFFFF'::bigint)`
      })
  })
})
