/** The storage conformance suites on one LMDB environment each (a fresh folder per suite), then what only LMDB has. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, it, layer } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { asBinary } from "lmdb"
import { afterAll } from "vitest"
import * as EventStoreModule from "../../src/eventstore/EventStore.ts"
import { EventStore, type EventStoreError, type NewEvent } from "../../src/eventstore/EventStore.ts"
import { Transactions } from "../../src/transaction/Transactions.ts"
import { Outbox } from "../../src/queue/Outbox.ts"
import { SnapshotStore } from "../../src/snapshot/SnapshotStore.ts"
import * as Lmdb from "../../src/lmdb/Lmdb.ts"
import { UnitOfWork } from "../../src/storage/UnitOfWork.ts"
import { suite as eventStoreSuite } from "../eventstore/EventStoreSuite.ts"
import { suite as repositorySuite } from "../command/RepositorySuite.ts"
import { suite as transactionsSuite } from "../transaction/TransactionsSuite.ts"
import { suite as inboxSuite } from "../queue/InboxSuite.ts"
import { suite as outboxSuite } from "../queue/OutboxSuite.ts"
import { suite as documentSuite } from "../readmodel/DocumentStoreSuite.ts"
import { suite as projectionStoreSuite } from "../readmodel/ProjectionStoreSuite.ts"
import { suite as snapshotStoreSuite } from "../snapshot/SnapshotStoreSuite.ts"

const folders: Array<string> = []
const fresh = (name: string) => {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), `minos-lmdb-${name}-`))
  folders.push(folder)
  return Lmdb.layer({ path: folder })
}

afterAll(() => {
  for (const folder of folders) fs.rmSync(folder, { recursive: true, force: true })
})

eventStoreSuite("lmdb", fresh("events"))
transactionsSuite("lmdb", fresh("transactions"))
snapshotStoreSuite("lmdb", fresh("snapshots"))
outboxSuite("lmdb", fresh("outbox"))
inboxSuite("lmdb", fresh("inbox"))
repositorySuite("lmdb", fresh("repository"))
documentSuite("lmdb", fresh("documents"))
projectionStoreSuite("lmdb", fresh("projections"))

// ---------------------------------------------------------------------------------------------
// what the suites cannot see: the LMDB unit of work, persistence and corrupt data

const uuid = (): string => crypto.randomUUID()
const ev = (type: string): NewEvent => ({ type, data: {} })

layer(Layer.fresh(fresh("specifics")), { timeout: "60 seconds", excludeTestServices: true })("Lmdb (backend specifics)", (it) => {
  it.effect("a check that fails at commit fails the whole unit and writes nothing", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      const uow = yield* UnitOfWork
      const contested = uuid()
      const other = uuid()
      const go = yield* Deferred.make<void>()
      // forked outside the unit: it commits on its own while the unit is still open
      const rival = yield* Deferred.await(go).pipe(
        Effect.andThen(store.append({ aggregate: "Exam", aggregateId: contested, expectedVersion: 0, now: 1, events: [ev("Rival")] })),
        Effect.forkChild
      )
      const exit = yield* uow.transaction(Effect.gen(function*() {
        yield* store.append({ aggregate: "Exam", aggregateId: other, expectedVersion: 0, now: 1, events: [ev("A")] })
        yield* store.append({ aggregate: "Exam", aggregateId: contested, expectedVersion: 0, now: 1, events: [ev("Mine")] })
        yield* Deferred.succeed(go, undefined)
        yield* Fiber.join(rival)
      })).pipe(Effect.exit)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      assert.strictEqual((error as EventStoreError).reason, "Conflict")
      assert.strictEqual(yield* store.streamVersion(other), 0)
      assert.deepStrictEqual((yield* store.readStream(contested)).map((e) => e.type), ["Rival"])
    }))

  it.effect("afterCommit runs after the commit, never for a failed unit, and at once outside a unit", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      const uow = yield* UnitOfWork
      const log: Array<string> = []
      const id = uuid()
      yield* uow.transaction(Effect.gen(function*() {
        yield* uow.afterCommit(Effect.sync(() => log.push("after")))
        yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A")] })
        log.push("body")
      }))
      yield* uow.transaction(Effect.andThen(uow.afterCommit(Effect.sync(() => log.push("never"))), Effect.fail("no"))).pipe(Effect.exit)
      yield* uow.afterCommit(Effect.sync(() => log.push("now")))
      assert.deepStrictEqual(log, ["body", "after", "now"])
    }))

  it.effect("nested units join the outer one", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      const uow = yield* UnitOfWork
      const id = uuid()
      const exit = yield* uow.transaction(Effect.gen(function*() {
        yield* uow.transaction(store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A")] }))
        assert.strictEqual(yield* store.streamVersion(id), 1)
        return yield* Effect.fail("outer fails")
      })).pipe(Effect.exit)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(yield* store.streamVersion(id), 0)
    }))

  it.effect("Transactions operations staged in a unit apply with its other writes", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      const tx = yield* Transactions
      const outbox = yield* Outbox
      const snapshots = yield* SnapshotStore
      const uow = yield* UnitOfWork
      yield* outbox.process(10_000, () => Effect.void)
      const id = uuid()
      const t = yield* uow.transaction(Effect.gen(function*() {
        const t = yield* tx.begin()
        yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A")], transaction: t.id })
        assert.strictEqual(yield* store.streamVersion(id, { transaction: t.id }), 1)
        yield* snapshots.put({ aggregate: "Exam", aggregateId: id, version: 1, document: { n: 1 }, deleted: false, createdAt: 1, updatedAt: 1, transactionId: t.id })
        yield* outbox.stage([{ topic: "T", key: null, value: "v", headers: {} }], { transaction: t.id })
        assert.strictEqual((yield* tx.commit(t.id)).status, "committed")
        return t
      }))
      assert.strictEqual((yield* tx.get(t.id)).status, "committed")
      assert.strictEqual(yield* store.streamVersion(id), 1)
      assert.deepStrictEqual((yield* snapshots.get("Exam", id)).document, { n: 1 })
      assert.strictEqual(yield* outbox.pending, 1)
      yield* outbox.process(10_000, () => Effect.void)
    }))

  it.effect("a child cannot commit into a parent that is no longer pending", () =>
    Effect.gen(function*() {
      const tx = yield* Transactions
      const parent = yield* tx.begin()
      const child = yield* tx.begin({ parent: parent.id })
      yield* tx.reject(parent.id)
      assert.strictEqual((yield* Effect.flip(tx.commit(child.id))).reason, "IllegalTransition")
      assert.strictEqual((yield* tx.get(child.id)).status, "pending")
    }))

  it.effect("after reserve, a main-store write of its versions is refused and the commit goes through", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      const tx = yield* Transactions
      const id = uuid()
      const t = yield* tx.begin()
      yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("Mine")], transaction: t.id })
      yield* tx.reserve(t.id)
      assert.strictEqual((yield* Effect.flip(store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("Theirs")] }))).reason, "Conflict")
      assert.strictEqual((yield* tx.commit(t.id)).status, "committed")
      assert.deepStrictEqual((yield* store.readStream(id)).map((e) => e.type), ["Mine"])
    }))

  it.effect("ids are case-insensitive", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      const id = uuid()
      yield* store.append({ aggregate: "Exam", aggregateId: id.toUpperCase(), expectedVersion: 0, now: 1, events: [ev("A")] })
      assert.strictEqual(yield* store.streamVersion(id), 1)
      assert.strictEqual((yield* store.readStream(id.toUpperCase()))[0]!.aggregateId, id)
    }))

  it.effect("undecodable stored data is Corrupt", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      const env = yield* Lmdb.LmdbEnv
      const id = uuid()
      env.dbs.events.putSync([id, "", 1], asBinary(Buffer.from([0x93, 0x01])) as never)
      env.dbs.events.putSync([id, "", 2], 42 as never)
      for (const after of [0, 1]) {
        const e = yield* Effect.flip(store.readStream(id, { afterVersion: after }))
        assert.strictEqual(e.reason, "Corrupt")
      }
    }))
})

it.live("reopening the folder keeps the events, the checkpoint and the position counter", () =>
  Effect.gen(function*() {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "minos-lmdb-reopen-"))
    folders.push(folder)
    const id = uuid()
    const first = yield* Effect.gen(function*() {
      const store = yield* EventStore
      yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A"), ev("B")] })
      return yield* store.head
    }).pipe(Effect.provide(Lmdb.layer({ path: folder })))
    yield* Effect.gen(function*() {
      const store = yield* EventStore
      assert.strictEqual(yield* store.head, first)
      yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 2, now: 2, events: [ev("C")] })
      const all = yield* store.readAll(EventStoreModule.start, 10)
      assert.deepStrictEqual(all.events.map((e) => [e.type, e.position]), [["A", 1], ["B", 2], ["C", 3]])
      assert.strictEqual(all.checkpoint, "3")
    }).pipe(Effect.provide(Lmdb.layer({ path: folder })))
  }))
