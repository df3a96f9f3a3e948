/** Conformance suite of the SnapshotStore port; every backend runs it. */
import { assert, it as baseIt } from "@effect/vitest"
import { Chunk, Effect, Layer, Option, Stream } from "effect"
import * as C from "../../src/query/Condition.ts"
import { type FindOptions, SnapshotStore } from "../../src/snapshot/SnapshotStore.ts"
import { Transactions } from "../../src/transaction/Transactions.ts"
import type * as Storage from "../../src/storage/Storage.ts"
import { UnitOfWork } from "../../src/storage/UnitOfWork.ts"
import { Exam } from "../fixtures/Domain.ts"

const uuid = (): string => crypto.randomUUID()

export const suite = (name: string, layer: Layer.Layer<Storage.Services, unknown>) =>
  baseIt.layer(layer, { timeout: "60 seconds", excludeTestServices: true })(`SnapshotStore (${name})`, (it) => {
    // one subject per run keeps the finds of this suite to its own rows
    const subject = `s-${uuid().slice(0, 8)}`
    const rows = [
      { title: "Algebra", durationMinutes: 90, status: "draft", meta: { level: 1, tags: ["core", "math"] } },
      { title: "Biology", durationMinutes: 60, status: "scheduled", roomUuid: "r-1", meta: { level: 2, tags: ["science"] } },
      { title: "Chemistry", durationMinutes: 120, status: "draft", meta: { level: 3, tags: ["science", "lab"] } },
      { title: "Drama", durationMinutes: 45, status: "cancelled" },
      { title: "it's 100% 'quoted'", durationMinutes: 30, status: "draft" }
    ]
    const ids = rows.map(() => uuid())
    const deletedId = uuid()

    const seed = Effect.gen(function*() {
      const store = yield* SnapshotStore
      const existing = yield* store.getOption("Exam", ids[0]!)
      if (Option.isSome(existing)) return
      for (const [i, r] of rows.entries()) {
        yield* store.put({ aggregate: "Exam", aggregateId: ids[i]!, version: 1, document: { ...r, subject }, deleted: false, createdAt: 1000 + i, updatedAt: 2000 + i, transactionId: null })
      }
      yield* store.put({ aggregate: "Exam", aggregateId: deletedId, version: 2, document: { title: "Zoology", subject, durationMinutes: 50, status: "draft" }, deleted: true, createdAt: 9, updatedAt: 9, transactionId: null })
    })

    const titles = (options: Omit<FindOptions, "condition"> & { condition: C.Condition }) =>
      Effect.gen(function*() {
        yield* seed
        const store = yield* SnapshotStore
        const found = yield* store.find(Exam, { ...options, condition: C.and(C.equal("subject", subject), options.condition) }).pipe(Stream.runCollect)
        return Chunk.toReadonlyArray(Chunk.fromIterable(found)).map((r) => (r.document as { title: string }).title)
      })

    const sorted = (xs: ReadonlyArray<string>) => [...xs].sort()

    it.effect("put / get / getOption; not found and deleted are distinct", () =>
      Effect.gen(function*() {
        yield* seed
        const store = yield* SnapshotStore
        const r = yield* store.get("Exam", ids[0]!)
        assert.strictEqual(r.version, 1)
        assert.strictEqual(r.createdAt, 1000)
        assert.strictEqual(r.updatedAt, 2000)
        assert.deepStrictEqual(r.document, { ...rows[0], subject })
        assert.strictEqual((yield* Effect.flip(store.get("Exam", uuid()))).reason, "NotFound")
        assert.strictEqual((yield* Effect.flip(store.get("Exam", deletedId))).reason, "Deleted")
        assert.isTrue(Option.isSome(yield* store.getOption("Exam", deletedId)))
        assert.strictEqual((yield* Effect.flip(store.get("Room", ids[0]!))).reason, "NotFound")
      }))

    it.effect("put keeps the newest version", () =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore
        const id = uuid()
        const put = (version: number, title: string) =>
          store.put({ aggregate: "Exam", aggregateId: id, version, document: { title }, deleted: false, createdAt: 1, updatedAt: version, transactionId: null })
        yield* put(2, "two")
        yield* put(1, "one")
        assert.deepStrictEqual((yield* store.get("Exam", id)).document, { title: "two" })
        yield* put(3, "three")
        assert.deepStrictEqual((yield* store.get("Exam", id)).document, { title: "three" })
        assert.strictEqual((yield* Effect.flip(store.put({ aggregate: "Exam", aggregateId: "x", version: 1, document: {}, deleted: false, createdAt: 1, updatedAt: 1, transactionId: null }))).reason, "InvalidInput")
      }))

    it.effect("each comparison operator", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* titles({ condition: C.equal("title", "Biology") }), ["Biology"])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.notEqual("status", "draft") })), ["Biology", "Drama"])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.lower("durationMinutes", 60) })), ["Drama", "it's 100% 'quoted'"])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.lowerEqual("durationMinutes", 60) })), ["Biology", "Drama", "it's 100% 'quoted'"])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.greater("durationMinutes", 90) })), ["Chemistry"])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.greaterEqual("durationMinutes", 90) })), ["Algebra", "Chemistry"])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.isIn("status", ["cancelled", "scheduled"]) })), ["Biology", "Drama"])
        assert.deepStrictEqual(yield* titles({ condition: C.isIn("status", []) }), [])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.like("title", "%ology") })), ["Biology"])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.like("title", "_rama") })), ["Drama"])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.contains("meta.tags", "science") })), ["Biology", "Chemistry"])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.contains("meta.tags", ["lab", "science"]) })), ["Chemistry"])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.greaterEqual("meta.level", 2) })), ["Biology", "Chemistry"])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.equal("roomUuid", "r-1") })), ["Biology"])
        assert.deepStrictEqual(yield* titles({ condition: C.equal("durationMinutes", "90") }), [])
      }))

    it.effect("TRUE, FALSE, AND, OR, NOT", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* titles({ condition: C.TRUE })).length, 5)
        assert.deepStrictEqual(yield* titles({ condition: C.FALSE }), [])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.or(C.equal("title", "Algebra"), C.equal("title", "Drama")) })), ["Algebra", "Drama"])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.and(C.equal("status", "draft"), C.greater("durationMinutes", 60)) })), ["Algebra", "Chemistry"])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.not(C.equal("status", "draft")) })), ["Biology", "Drama"])
      }))

    it.effect("ordering, limit, columns and deleted rows", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* titles({ condition: C.TRUE, ordering: C.asc("durationMinutes") }), ["it's 100% 'quoted'", "Drama", "Biology", "Algebra", "Chemistry"])
        assert.deepStrictEqual(yield* titles({ condition: C.TRUE, ordering: [C.desc("status"), C.asc("title")], limit: 3 }), ["Biology", "Algebra", "Chemistry"])
        assert.deepStrictEqual(yield* titles({ condition: C.TRUE, ordering: C.desc("createdAt"), limit: 2 }), ["it's 100% 'quoted'", "Drama"])
        assert.deepStrictEqual(yield* titles({ condition: C.equal("uuid", ids[1]) }), ["Biology"])
        assert.deepStrictEqual(yield* titles({ condition: C.greaterEqual("updatedAt", 2003) , ordering: C.asc("updatedAt") }), ["Drama", "it's 100% 'quoted'"])
        assert.deepStrictEqual(yield* titles({ condition: C.equal("version", 2), includeDeleted: true }), ["Zoology"])
        assert.deepStrictEqual(yield* titles({ condition: C.equal("version", 2) }), [])
      }))

    it.effect("an unknown or malformed field path is InvalidQuery, never SQL", () =>
      Effect.gen(function*() {
        yield* seed
        const store = yield* SnapshotStore
        for (const field of ["colour", "meta.nope", "title'); DROP TABLE minos_snapshots; --", "meta..level", "", "a b"]) {
          const e = yield* store.find(Exam, { condition: C.equal(field, 1) }).pipe(Stream.runCollect, Effect.flip)
          assert.strictEqual(e.reason, "InvalidQuery", field)
        }
        const e = yield* store.find(Exam, { condition: C.TRUE, ordering: C.asc("nope") }).pipe(Stream.runCollect, Effect.flip)
        assert.strictEqual(e.reason, "InvalidQuery")
        assert.strictEqual((yield* titles({ condition: C.TRUE })).length, 5)
      }))

    it.effect("injection attempts in values are plain values", () =>
      Effect.gen(function*() {
        for (const value of ["' OR '1'='1", "x'); DROP TABLE minos_snapshots; --", "%", "\\"]) {
          assert.deepStrictEqual(yield* titles({ condition: C.equal("title", value) }), [])
        }
        assert.deepStrictEqual(yield* titles({ condition: C.equal("title", "it's 100% 'quoted'") }), ["it's 100% 'quoted'"])
        assert.deepStrictEqual(yield* titles({ condition: C.like("title", "it's 100\\% %") }), ["it's 100% 'quoted'"])
        assert.strictEqual((yield* titles({ condition: C.TRUE })).length, 5)
      }))

    it.effect("a transaction's view: its own rows win, others' stay hidden", () =>
      Effect.gen(function*() {
        yield* seed
        const store = yield* SnapshotStore
        const tx = yield* Transactions
        const t = yield* tx.begin()
        yield* store.put({ aggregate: "Exam", aggregateId: ids[0]!, version: 2, document: { ...rows[0], subject, title: "Algebra (tx)" }, deleted: false, createdAt: 1000, updatedAt: 3000, transactionId: t.id })
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.like("title", "Alg%") })), ["Algebra"])
        assert.deepStrictEqual(sorted(yield* titles({ condition: C.like("title", "Alg%"), transaction: t.id })), ["Algebra (tx)"])
        assert.strictEqual((yield* titles({ condition: C.TRUE, transaction: t.id })).length, 5)
        yield* tx.reject(t.id)
      }))

    it.effect("streams a large result", () =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore
        const bulk = `bulk-${uuid().slice(0, 8)}`
        const n = 2500
        const uow = yield* UnitOfWork
        yield* uow.transaction(Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
          store.put({ aggregate: "Exam", aggregateId: uuid(), version: 1, document: { title: `t${i}`, subject: bulk, durationMinutes: (i % 600) + 1, status: "draft" }, deleted: false, createdAt: i, updatedAt: i, transactionId: null }), { discard: true }))
        let count = 0
        yield* store.find(Exam, { condition: C.equal("subject", bulk) }).pipe(Stream.runForEach(() => Effect.sync(() => count++)))
        assert.strictEqual(count, n)
        const first = yield* store.find(Exam, { condition: C.equal("subject", bulk), ordering: C.desc("durationMinutes"), limit: 1 }).pipe(Stream.runCollect)
        assert.strictEqual((Chunk.toReadonlyArray(Chunk.fromIterable(first))[0]!.document as { durationMinutes: number }).durationMinutes, 600)
      }), 120_000)
  })
