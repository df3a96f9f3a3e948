/** Conformance suite of the Transactions port (minos transaction semantics); every backend runs it. */
import { assert, it as baseIt } from "@effect/vitest"
import { Effect, Layer, Option, Stream } from "effect"
import { EventStore } from "../../src/eventstore/EventStore.ts"
import { Transactions } from "../../src/transaction/Transactions.ts"
import { Outbox } from "../../src/queue/Outbox.ts"
import * as Condition from "../../src/query/Condition.ts"
import { SnapshotStore } from "../../src/snapshot/SnapshotStore.ts"
import type * as Storage from "../../src/storage/Storage.ts"
import { Exam } from "../fixtures/Domain.ts"

const uuid = (): string => crypto.randomUUID()
const doc = (title: string) => ({ title, subject: "tx", durationMinutes: 10, status: "draft" })

export const suite = (name: string, layer: Layer.Layer<Storage.Services, unknown>) =>
  baseIt.layer(layer, { timeout: "60 seconds", excludeTestServices: true })(`Transactions (${name})`, (it) => {
    it.effect("moves pending → reserving → reserved → committing → committed and refuses other moves", () =>
      Effect.gen(function*() {
        const tx = yield* Transactions
        const t = yield* tx.begin()
        assert.strictEqual(t.status, "pending")
        assert.isNull(t.parent)
        assert.strictEqual((yield* tx.get(t.id)).status, "pending")
        assert.strictEqual((yield* tx.reserve(t.id)).status, "reserved")
        assert.strictEqual((yield* tx.commit(t.id)).status, "committed")
        for (const op of [tx.commit(t.id), tx.reject(t.id), tx.reserve(t.id)]) {
          const e = yield* Effect.flip(op)
          assert.strictEqual(e.reason, "IllegalTransition")
        }
        const r = yield* tx.begin()
        assert.strictEqual((yield* tx.reject(r.id)).status, "rejected")
        assert.strictEqual((yield* Effect.flip(tx.commit(r.id))).reason, "IllegalTransition")
        assert.strictEqual((yield* Effect.flip(tx.get(uuid()))).reason, "NotFound")
        assert.strictEqual((yield* Effect.flip(tx.begin({ id: t.id }))).reason, "AlreadyExists")
        assert.strictEqual((yield* Effect.flip(tx.begin({ id: "nope" }))).reason, "InvalidInput")
        assert.strictEqual((yield* Effect.flip(tx.begin({ parent: uuid() }))).reason, "NotFound")
      }))

    it.effect("commit moves events, snapshots and outbox rows to the main store; reject discards them", () =>
      Effect.gen(function*() {
        const tx = yield* Transactions
        const events = yield* EventStore
        const snapshots = yield* SnapshotStore
        const outbox = yield* Outbox
        const run = (title: string) =>
          Effect.gen(function*() {
            const t = yield* tx.begin()
            const id = uuid()
            yield* events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 5, events: [{ type: "ExamCreated", data: {} }], transaction: t.id })
            yield* snapshots.put({ aggregate: "Exam", aggregateId: id, version: 1, document: doc(title), deleted: false, createdAt: 5, updatedAt: 5, transactionId: t.id })
            yield* outbox.stage([{ topic: `Tx${title}`, key: id, value: title, headers: {} }], { transaction: t.id })
            return { t, id }
          })
        const pendingBefore = yield* outbox.pending
        const a = yield* run("committed")
        const b = yield* run("rejected")
        assert.isTrue(Option.isNone(yield* snapshots.getOption("Exam", a.id)))
        assert.isTrue(Option.isSome(yield* snapshots.getOption("Exam", a.id, { transaction: a.t.id })))
        assert.strictEqual(yield* outbox.pending, pendingBefore)
        yield* tx.commit(a.t.id)
        yield* tx.reject(b.t.id)
        assert.strictEqual(yield* events.streamVersion(a.id), 1)
        assert.strictEqual(yield* events.streamVersion(b.id), 0)
        const s = yield* snapshots.get("Exam", a.id)
        assert.strictEqual(s.transactionId, null)
        assert.deepStrictEqual(s.document, doc("committed"))
        assert.isTrue(Option.isNone(yield* snapshots.getOption("Exam", b.id)))
        assert.isTrue(Option.isNone(yield* snapshots.getOption("Exam", b.id, { transaction: b.t.id })))
        assert.strictEqual(yield* outbox.pending, pendingBefore + 1)
        const found = yield* snapshots.find(Exam, { condition: Condition.equal("subject", "tx") }).pipe(Stream.runCollect)
        assert.isTrue(found.some((r) => r.aggregateId === a.id))
        assert.isFalse(found.some((r) => r.aggregateId === b.id))
        yield* outbox.process(1000, () => Effect.void)
      }))

    it.effect("nested transactions: a child commits into its parent, the parent into the main store", () =>
      Effect.gen(function*() {
        const tx = yield* Transactions
        const events = yield* EventStore
        const snapshots = yield* SnapshotStore
        const parent = yield* tx.begin()
        const child = yield* tx.begin({ parent: parent.id })
        assert.strictEqual(child.parent, parent.id)
        assert.deepStrictEqual(yield* tx.chain(child.id), [parent.id, child.id])
        const id = uuid()
        yield* events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [{ type: "ExamCreated", data: {} }], transaction: parent.id })
        yield* snapshots.put({ aggregate: "Exam", aggregateId: id, version: 1, document: doc("p"), deleted: false, createdAt: 1, updatedAt: 1, transactionId: parent.id })
        // the child sees the parent's writes and adds its own
        assert.strictEqual(yield* events.streamVersion(id, { transaction: child.id }), 1)
        yield* events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 1, now: 2, events: [{ type: "ExamUpdated", data: {} }], transaction: child.id })
        yield* snapshots.put({ aggregate: "Exam", aggregateId: id, version: 2, document: doc("c"), deleted: false, createdAt: 1, updatedAt: 2, transactionId: child.id })
        assert.strictEqual(yield* events.streamVersion(id, { transaction: parent.id }), 1)
        assert.deepStrictEqual((yield* snapshots.get("Exam", id, { transaction: child.id })).document, doc("c"))
        assert.deepStrictEqual((yield* snapshots.get("Exam", id, { transaction: parent.id })).document, doc("p"))
        yield* tx.commit(child.id)
        assert.strictEqual(yield* events.streamVersion(id, { transaction: parent.id }), 2)
        assert.strictEqual(yield* events.streamVersion(id), 0)
        assert.deepStrictEqual((yield* snapshots.get("Exam", id, { transaction: parent.id })).document, doc("c"))
        yield* tx.commit(parent.id)
        assert.deepStrictEqual((yield* events.readStream(id)).map((e) => e.type), ["ExamCreated", "ExamUpdated"])
        assert.deepStrictEqual((yield* snapshots.get("Exam", id)).document, doc("c"))
      }))

    it.effect("a child cannot begin in a closed parent", () =>
      Effect.gen(function*() {
        const tx = yield* Transactions
        const parent = yield* tx.begin()
        yield* tx.reject(parent.id)
        assert.strictEqual((yield* Effect.flip(tx.begin({ parent: parent.id }))).reason, "IllegalTransition")
      }))

    it.effect("reserve detects a version collision with the main store and rejects", () =>
      Effect.gen(function*() {
        const tx = yield* Transactions
        const events = yield* EventStore
        const id = uuid()
        yield* events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [{ type: "A", data: {} }] })
        const t = yield* tx.begin()
        yield* events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 1, now: 2, events: [{ type: "B", data: {} }], transaction: t.id })
        // someone else writes version 2 in the main store meanwhile
        yield* events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 1, now: 3, events: [{ type: "C", data: {} }] })
        const e = yield* Effect.flip(tx.reserve(t.id))
        assert.strictEqual(e.reason, "Conflict")
        assert.strictEqual((yield* tx.get(t.id)).status, "rejected")
        assert.deepStrictEqual((yield* events.readStream(id)).map((x) => x.type), ["A", "C"])
      }))

    it.effect("reserve detects a collision with a reserved sibling", () =>
      Effect.gen(function*() {
        const tx = yield* Transactions
        const events = yield* EventStore
        const id = uuid()
        const t1 = yield* tx.begin()
        const t2 = yield* tx.begin()
        for (const t of [t1, t2]) {
          yield* events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [{ type: "A", data: {} }], transaction: t.id })
        }
        yield* tx.reserve(t1.id)
        assert.strictEqual((yield* Effect.flip(tx.commit(t2.id))).reason, "Conflict")
        yield* tx.commit(t1.id)
        assert.strictEqual(yield* events.streamVersion(id), 1)
      }))

    it.effect("a child of a committed or rejected parent can neither reserve nor commit (its writes would be lost)", () =>
      Effect.gen(function*() {
        const tx = yield* Transactions
        const events = yield* EventStore
        for (const close of ["commit", "reject"] as const) {
          const parent = yield* tx.begin()
          const child = yield* tx.begin({ parent: parent.id })
          const id = uuid()
          yield* events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [{ type: "A", data: {} }], transaction: child.id })
          yield* tx[close](parent.id)
          assert.strictEqual((yield* Effect.flip(tx.reserve(child.id))).reason, "IllegalTransition")
          assert.strictEqual((yield* Effect.flip(tx.commit(child.id))).reason, "IllegalTransition")
          assert.strictEqual((yield* tx.get(child.id)).status, "pending")
          assert.strictEqual(yield* events.streamVersion(id), 0)
          // the coordinator can still clean it up
          assert.strictEqual((yield* tx.reject(child.id)).status, "rejected")
        }
      }))

    it.effect("a reserved child cannot commit into a parent that closed after it reserved", () =>
      Effect.gen(function*() {
        const tx = yield* Transactions
        const parent = yield* tx.begin()
        const child = yield* tx.begin({ parent: parent.id })
        yield* tx.reserve(child.id)
        yield* tx.commit(parent.id)
        assert.strictEqual((yield* Effect.flip(tx.commit(child.id))).reason, "IllegalTransition")
        assert.strictEqual((yield* tx.reject(child.id)).status, "rejected")
      }))

    it.effect("a main-store write to a version a reserved transaction holds is refused; the reserved one then commits", () =>
      Effect.gen(function*() {
        const tx = yield* Transactions
        const events = yield* EventStore
        const id = uuid()
        yield* events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [{ type: "A", data: {} }] })
        const t = yield* tx.begin()
        yield* events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 1, now: 2, events: [{ type: "B", data: {} }], transaction: t.id })
        yield* tx.reserve(t.id)
        const refused = yield* Effect.flip(events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 1, now: 3, events: [{ type: "C", data: {} }] }))
        assert.strictEqual(refused.reason, "Conflict")
        assert.include(refused.message, "reserved transaction")
        // a sibling transaction is refused the same version too
        const sibling = yield* tx.begin()
        const refusedSibling = yield* Effect.flip(events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 1, now: 3, events: [{ type: "D", data: {} }], transaction: sibling.id }))
        assert.strictEqual(refusedSibling.reason, "Conflict")
        assert.strictEqual((yield* tx.commit(t.id)).status, "committed")
        assert.deepStrictEqual((yield* events.readStream(id)).map((e) => e.type), ["A", "B"])
        // after the commit the next version is free again
        yield* events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 2, now: 4, events: [{ type: "C", data: {} }] })
        yield* tx.reject(sibling.id)
      }))

    it.effect("a pending transaction's versions do not block writers; its reserve then collides and rejects it", () =>
      Effect.gen(function*() {
        const tx = yield* Transactions
        const events = yield* EventStore
        const id = uuid()
        const t = yield* tx.begin()
        yield* events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [{ type: "A", data: {} }], transaction: t.id })
        yield* events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [{ type: "B", data: {} }] })
        assert.strictEqual((yield* Effect.flip(tx.reserve(t.id))).reason, "Conflict")
        assert.strictEqual((yield* tx.get(t.id)).status, "rejected")
      }))

    it.effect("racing a reserve against main-store writes of the same version: exactly one wins, a reserved one always commits", () =>
      Effect.gen(function*() {
        const tx = yield* Transactions
        const events = yield* EventStore
        let reservedWins = 0
        let writerWins = 0
        for (let i = 0; i < 25; i++) {
          const id = uuid()
          const t = yield* tx.begin()
          yield* events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [{ type: "T", data: {} }], transaction: t.id })
          const [reserved, written] = yield* Effect.all([
            Effect.result(tx.reserve(t.id)),
            Effect.result(events.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [{ type: "M", data: {} }] }))
          ], { concurrency: 2 })
          assert.notStrictEqual(reserved._tag === "Success", written._tag === "Success", `round ${i}: exactly one of them wins`)
          if (reserved._tag === "Success") {
            reservedWins++
            assert.strictEqual((yield* tx.commit(t.id)).status, "committed")
            assert.deepStrictEqual((yield* events.readStream(id)).map((e) => e.type), ["T"])
          } else {
            writerWins++
            assert.strictEqual((yield* tx.get(t.id)).status, "rejected")
            assert.deepStrictEqual((yield* events.readStream(id)).map((e) => e.type), ["M"])
          }
        }
        assert.strictEqual(reservedWins + writerWins, 25)
      }))

    it.effect("lists transactions by status and age", () =>
      Effect.gen(function*() {
        const tx = yield* Transactions
        const t = yield* tx.begin()
        yield* tx.reserve(t.id)
        const reserved = yield* tx.list({ status: "reserved" })
        assert.isTrue(reserved.some((r) => r.id === t.id))
        const old = yield* tx.list({ status: "reserved", olderThan: 0 })
        assert.isFalse(old.some((r) => r.id === t.id))
        yield* tx.reject(t.id)
      }))
  })
