/** The SagaStore conformance suite on LMDB (a fresh folder) and on PostgreSQL (a fresh schema), then what only each backend has. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { afterAll } from "vitest"
import * as LmdbSagaStore from "../../src/lmdb/LmdbSagaStore.ts"
import * as PgSagaStore from "../../src/postgres/PgSagaStore.ts"
import { type ExecutionRecord, SagaStore, type SagaStoreError } from "../../src/saga/SagaStore.ts"
import * as Postgres from "../../src/postgres/Postgres.ts"
import { describePostgres, freshSchema } from "../support/Services.ts"
import { suite } from "./SagaStoreSuite.ts"

const folders: Array<string> = []
const tempFolder = (name: string): string => {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), `minos-saga-${name}-`))
  folders.push(folder)
  return folder
}

afterAll(() => {
  for (const folder of folders) fs.rmSync(folder, { recursive: true, force: true })
})

suite("lmdb", LmdbSagaStore.layer({ path: path.join(tempFolder("suite"), "exam.lmdb") }))

/**
 * The PostgreSQL store in a fresh schema: `Postgres.layer` only puts the schema in the search path and
 * `PgSagaStore.make` creates it; the schema is dropped when the layer is released.
 */
const pgSagaStore = (prefix: string) => {
  const settings = freshSchema(prefix)
  const dropSchema = Layer.effectDiscard(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Effect.addFinalizer(() => sql.unsafe(`DROP SCHEMA IF EXISTS "${settings.schema}" CASCADE`).pipe(Effect.ignore))
  }))
  return Layer.merge(PgSagaStore.layer, dropSchema).pipe(Layer.provideMerge(Postgres.layer(settings)))
}

describePostgres("PostgreSQL saga store", () => {
  suite("postgres", pgSagaStore("sg"))

  it.layer(pgSagaStore("sgx"), { timeout: "60 seconds", excludeTestServices: true })("PgSagaStore (backend specifics)", (it) => {
    it.effect("make creates the schema it is pointed at and can run again", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql<{ schema: string | null }>`SELECT current_schema() AS schema`
        assert.match(row?.schema ?? "", /^sgx_/)
        // several instances starting together: the advisory lock serialises the DDL
        yield* Effect.all([PgSagaStore.make, PgSagaStore.make, PgSagaStore.make], { concurrency: "unbounded" })
        const store = yield* SagaStore
        const id = crypto.randomUUID()
        yield* store.create({ id, saga: "S", version: 1, status: "created", deadline: null, data: {}, createdAt: 1, updatedAt: 1 })
        assert.isTrue(Option.isSome(yield* store.get(id.toUpperCase())))
      }))
  })
})

// ---------------------------------------------------------------------------------------------
// LMDB: the environment's path and lifetime

const sample = (): Omit<ExecutionRecord, "revision"> => ({
  id: crypto.randomUUID(),
  saga: "S",
  version: 1,
  status: "paused",
  deadline: 100,
  data: { steps: ["a"] },
  createdAt: 1,
  updatedAt: 2
})

/** Writes one execution in a store at `where`, closes it, reopens it and reads the execution back. */
const roundTrip = (where: string) =>
  Effect.gen(function*() {
    const input = sample()
    yield* Effect.scoped(Effect.gen(function*() {
      const store = yield* LmdbSagaStore.make({ path: where })
      yield* store.create(input)
    }))
    return yield* Effect.scoped(Effect.gen(function*() {
      const store = yield* LmdbSagaStore.make({ path: where })
      const got = yield* store.get(input.id)
      assert.deepStrictEqual(Option.map(got, (r) => ({ ...r })), Option.some({ ...input, revision: 1 }))
      assert.deepStrictEqual((yield* store.due(100)).map((r) => r.id), [input.id])
      return input
    }))
  })

describe("LmdbSagaStore (backend specifics)", () => {
  it.effect("executions survive closing and reopening a file path; missing folders are created", () =>
    Effect.gen(function*() {
      const where = path.join(tempFolder("file"), "nested", "exam.lmdb")
      yield* roundTrip(where)
      assert.isTrue(fs.statSync(where).isFile())
    }))

  it.effect("an existing folder is opened as the environment folder (minos's Python layout)", () =>
    Effect.gen(function*() {
      const where = path.join(tempFolder("folder"), "exam.lmdb")
      fs.mkdirSync(where)
      yield* roundTrip(where)
      assert.isTrue(fs.existsSync(path.join(where, "data.mdb")))
    }))

  it.effect("a new path without an extension becomes a folder", () =>
    Effect.gen(function*() {
      const where = path.join(tempFolder("plain"), "sagas")
      yield* roundTrip(where)
      assert.isTrue(fs.statSync(where).isDirectory())
    }))

  it.effect("a path that cannot be opened fails with Unavailable", () =>
    Effect.gen(function*() {
      const blocker = path.join(tempFolder("blocked"), "file")
      fs.writeFileSync(blocker, "not a folder")
      const error = yield* Effect.flip(Effect.scoped(LmdbSagaStore.make({ path: path.join(blocker, "exam.lmdb") })))
      assert.strictEqual(error.reason, "Unavailable")
    }))

  it.effect("a closed store fails with a typed error instead of throwing", () =>
    Effect.gen(function*() {
      const where = path.join(tempFolder("closed"), "exam.lmdb")
      const store = yield* Effect.scoped(LmdbSagaStore.make({ path: where }))
      for (const op of [store.create(sample()), store.get(crypto.randomUUID()), store.list(), store.due(1), store.prune(1)]) {
        const error = yield* Effect.flip(op as Effect.Effect<unknown, SagaStoreError>)
        assert.include(["Unavailable", "Unknown"], error.reason, error.message)
      }
    }))
})
