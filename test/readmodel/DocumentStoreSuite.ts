/** Conformance suite of the DocumentStore port; every backend runs it. */
import { assert, it as baseIt } from "@effect/vitest"
import { Effect, Layer, Option, Schema, Stream } from "effect"
import * as DocumentStore from "../../src/readmodel/DocumentStore.ts"
import * as C from "../../src/query/Condition.ts"
import type * as Storage from "../../src/storage/Storage.ts"
import { UnitOfWork } from "../../src/storage/UnitOfWork.ts"

const View = Schema.Struct({ title: Schema.String, minutes: Schema.Int, tags: Schema.Array(Schema.String) })

const Exam = Schema.Struct({
  subject: Schema.String,
  // encoded as epoch ms: queries address the encoded side
  scheduledAt: Schema.DateFromMillis,
  room: Schema.optional(Schema.Struct({ name: Schema.String, seats: Schema.Int }))
})

type Found = Stream.Stream<DocumentStore.Document, DocumentStore.DocumentStoreError>

export const suite = (name: string, layer: Layer.Layer<Storage.Services, unknown>) =>
  baseIt.layer(layer, { timeout: "60 seconds", excludeTestServices: true })(`DocumentStore (${name})`, (it) => {
    const col = () => `c${crypto.randomUUID().slice(0, 8)}`
    const ids = (s: Found) => Effect.map(Stream.runCollect(s), (xs) => Array.from(xs).map((d) => d.id))
    const failure = <A, E, R>(s: Stream.Stream<A, E, R>) => Effect.flip(Stream.runCollect(s))

    it.effect("put, get, upsert and remove", () =>
      Effect.gen(function*() {
        const store = yield* DocumentStore.DocumentStore
        const c = col()
        yield* store.put(c, "a", { title: "A", n: 1 }, 1000)
        assert.deepStrictEqual(yield* store.get(c, "a"), Option.some({ id: "a", document: { title: "A", n: 1 }, updatedAt: 1000 }))
        yield* store.put(c, "a", { title: "A2" }, 2000)
        assert.deepStrictEqual(yield* store.get(c, "a"), Option.some({ id: "a", document: { title: "A2" }, updatedAt: 2000 }))
        assert.strictEqual(yield* store.count(c), 1)
        assert.isTrue(yield* store.remove(c, "a"))
        assert.isFalse(yield* store.remove(c, "a"))
        assert.isTrue(Option.isNone(yield* store.get(c, "a")))
        assert.isTrue(Option.isNone(yield* store.get(col(), "a")))
        assert.strictEqual(yield* store.count(c), 0)
      }))

    it.effect("the write time defaults to the clock; any JSON value is a document", () =>
      Effect.gen(function*() {
        const store = yield* DocumentStore.DocumentStore
        const c = col()
        const before = Date.now()
        for (const [id, doc] of [["o", { nested: { deep: [1, "two", null, true] } }], ["n", 42], ["s", "text"], ["l", [1, 2]], ["z", null]] as const) {
          yield* store.put(c, id, doc)
        }
        const after = Date.now()
        const o = Option.getOrThrow(yield* store.get(c, "o"))
        assert.deepStrictEqual(o.document, { nested: { deep: [1, "two", null, true] } })
        assert.isTrue(o.updatedAt >= before && o.updatedAt <= after, `${before} <= ${o.updatedAt} <= ${after}`)
        assert.deepStrictEqual(Option.map(yield* store.get(c, "z"), (d) => d.document), Option.some(null))
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.TRUE })), ["l", "n", "o", "s", "z"])
      }))

    it.effect("a stored document is a copy of the caller's value", () =>
      Effect.gen(function*() {
        const store = yield* DocumentStore.DocumentStore
        const uow = yield* UnitOfWork
        const c = col()
        const doc = { n: 1 }
        yield* uow.transaction(Effect.gen(function*() {
          yield* store.put(c, "a", doc, 1)
          doc.n = 2
        }))
        assert.deepStrictEqual(Option.map(yield* store.get(c, "a"), (d) => d.document), Option.some({ n: 1 }))
      }))

    it.effect("find with conditions, ordering, limit and offset; count", () =>
      Effect.gen(function*() {
        const store = yield* DocumentStore.DocumentStore
        const c = col()
        const rows = [["x1", 30, ["a"]], ["x2", 90, ["a", "b"]], ["x3", 60, ["b"]], ["x4", 120, []]] as const
        for (const [id, minutes, tags] of rows) yield* store.put(c, id, { title: id, minutes, tags, room: { seats: minutes / 10 } }, minutes)
        yield* store.put(col(), "x9", { title: "x9", minutes: 100, tags: ["a"] }, 1)
        const find = (options: DocumentStore.FindOptions) => ids(store.find(c, options))
        assert.deepStrictEqual(yield* find({ condition: C.greater("minutes", 45), ordering: C.asc("minutes") }), ["x3", "x2", "x4"])
        assert.deepStrictEqual(yield* find({ condition: C.contains("tags", "b"), ordering: C.desc("minutes") }), ["x2", "x3"])
        assert.deepStrictEqual(yield* find({ condition: C.TRUE, ordering: C.asc("updatedAt"), limit: 2, offset: 1 }), ["x3", "x2"])
        assert.deepStrictEqual(yield* find({ condition: C.TRUE, ordering: C.desc("id"), offset: 3 }), ["x1"])
        assert.deepStrictEqual(yield* find({ condition: C.TRUE, limit: 0 }), [])
        assert.deepStrictEqual(yield* find({ condition: C.TRUE, offset: 10 }), [])
        assert.deepStrictEqual(yield* find({ condition: C.isIn("id", ["x4", "x1", "nope"]) }), ["x1", "x4"])
        assert.deepStrictEqual(yield* find({ condition: C.like("title", "x_"), ordering: C.desc("id"), limit: 1 }), ["x4"])
        assert.deepStrictEqual(yield* find({ condition: C.like("id", "%3") }), ["x3"])
        assert.deepStrictEqual(yield* find({ condition: C.greaterEqual("updatedAt", 90) }), ["x2", "x4"])
        assert.deepStrictEqual(yield* find({ condition: C.lowerEqual("room.seats", 6), ordering: [C.desc("room.seats"), C.asc("id")] }), ["x3", "x1"])
        assert.deepStrictEqual(yield* find({ condition: C.or(C.equal("title", "x1"), C.not(C.lower("minutes", 100))) }), ["x1", "x4"])
        assert.deepStrictEqual(yield* find({ condition: C.equal("missing", 1) }), [])
        // an absent field sorts last ascending (NULLS LAST), then ties by id
        yield* store.put(c, "x0", { title: "x0" }, 5)
        assert.deepStrictEqual(yield* find({ condition: C.TRUE, ordering: C.asc("minutes") }), ["x1", "x3", "x2", "x4", "x0"])
        assert.strictEqual(yield* store.count(c), 5)
        assert.strictEqual(yield* store.count(c, C.lower("minutes", 100)), 3)
        assert.strictEqual(yield* store.count(c, C.FALSE), 0)
      }))

    it.effect("ids of any characters; the same id order on every backend; collections are apart", () =>
      Effect.gen(function*() {
        const store = yield* DocumentStore.DocumentStore
        const c = col()
        const odd = ["B", "a", "it's", "\"q\"", "x y", "é", "\uffffz", "😀", "a.b", "a%", "Ω".repeat(200)]
        for (const id of odd) yield* store.put(c, id, { id }, 1)
        for (const other of [`${c}x`, `${c}.`, `${c}_`]) yield* store.put(other, "a", {}, 1)
        const byCodePoint = [...odd].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.TRUE })), byCodePoint)
        for (const id of odd) assert.deepStrictEqual(Option.map(yield* store.get(c, id), (d) => d.document), Option.some({ id }))
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.equal("id", "it's") })), ["it's"])
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.like("id", "a\\%") })), ["a%"])
        assert.strictEqual(yield* store.count(c), odd.length)
        assert.strictEqual(yield* store.count(`${c}x`), 1)
      }))

    it.effect("invalid keys, documents and pages are refused", () =>
      Effect.gen(function*() {
        const store = yield* DocumentStore.DocumentStore
        const c = col()
        for (const bad of ["", "1abc", "a b", "a'b", "x".repeat(101), "ü"]) {
          assert.strictEqual((yield* Effect.flip(store.put(bad, "x", {}, 1))).reason, "InvalidInput", bad)
          assert.strictEqual((yield* Effect.flip(store.get(bad, "x"))).reason, "InvalidInput", bad)
          assert.strictEqual((yield* failure(store.find(bad, { condition: C.TRUE }))).reason, "InvalidQuery", bad)
        }
        for (const bad of ["", "x".repeat(201), "a\u0000b", "\ud800"]) {
          assert.strictEqual((yield* Effect.flip(store.put(c, bad, {}, 1))).reason, "InvalidInput", JSON.stringify(bad))
          assert.strictEqual((yield* Effect.flip(store.remove(c, bad))).reason, "InvalidInput", JSON.stringify(bad))
        }
        for (const bad of [{ n: 10n }, { d: new Date(0) }, { u: undefined }, { n: NaN }, undefined, { s: "a\u0000" }, { ["k\u0000"]: 1 }, ["\udc00"]]) {
          assert.strictEqual((yield* Effect.flip(store.put(c, "x", bad, 1))).reason, "InvalidInput")
        }
        assert.strictEqual((yield* Effect.flip(store.put(c, "x", {}, NaN))).reason, "InvalidInput")
        for (const page of [{ limit: -1 }, { offset: 1.5 }, { limit: Infinity }]) {
          assert.strictEqual((yield* failure(store.find(c, { condition: C.TRUE, ...page }))).reason, "InvalidQuery")
        }
        assert.strictEqual(yield* store.count(c), 0)
      }))

    it.effect("paths are checked (against the schema when given); injection attempts are plain values", () =>
      Effect.gen(function*() {
        const store = yield* DocumentStore.DocumentStore
        const c = col()
        yield* store.put(c, "q", { title: "it's", minutes: 1, tags: [] }, 1)
        yield* store.put(c, "r", { title: "plain", minutes: 2, tags: [] }, 1)
        const unknown = yield* failure(store.find(c, { condition: C.equal("colour", 1), schema: View }))
        assert.strictEqual(unknown.reason, "InvalidQuery")
        assert.match(unknown.message, /colour/)
        assert.strictEqual((yield* failure(store.find(c, { condition: C.TRUE, ordering: C.asc("title.x"), schema: View }))).reason, "InvalidQuery")
        assert.strictEqual((yield* Effect.flip(store.count(c, C.equal("colour", 1), View))).reason, "InvalidQuery")
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.equal("minutes", 2), ordering: C.asc("updatedAt"), schema: View })), ["r"])
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.equal("colour", 1) })), [])
        const hostile = ["title'); DROP TABLE minos_documents; --", "title\" = 1 OR \"1", "a b", "", "a..b", ".a", "a.", "title::text", "{title}"]
        for (const field of hostile) {
          assert.strictEqual((yield* failure(store.find(c, { condition: C.equal(field, 1) }))).reason, "InvalidQuery", field)
          assert.strictEqual((yield* failure(store.find(c, { condition: C.TRUE, ordering: C.desc(field) }))).reason, "InvalidQuery", field)
          assert.strictEqual((yield* Effect.flip(store.count(c, C.like(field, "%")))).reason, "InvalidQuery", field)
        }
        assert.strictEqual((yield* failure(store.find(c, { condition: C.TRUE, ordering: { field: "id", direction: "ASC; DROP" as "ASC" } }))).reason, "InvalidQuery")
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.equal("title", "' OR '1'='1") })), [])
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.like("title", "%' OR '1'='1") })), [])
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.isIn("title", ["x'); DELETE FROM minos_documents; --", "it's"]) })), ["q"])
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.equal("title", "it's") })), ["q"])
        assert.strictEqual(yield* store.count(c), 2)
      }))

    it.effect("writes join the unit of work: visible inside it, rolled back with it", () =>
      Effect.gen(function*() {
        const store = yield* DocumentStore.DocumentStore
        const uow = yield* UnitOfWork
        const c = col()
        yield* store.put(c, "keep", { v: 1 }, 1)
        yield* store.put(c, "old", { v: 5 }, 1)
        const exit = yield* uow.transaction(Effect.gen(function*() {
          yield* store.put(c, "new", { v: 2 }, 2)
          yield* store.put(c, "old", { v: 0 }, 2)
          assert.isTrue(yield* store.remove(c, "keep"))
          assert.isFalse(yield* store.remove(c, "keep"))
          assert.deepStrictEqual(Option.map(yield* store.get(c, "new"), (d) => d.document), Option.some({ v: 2 }))
          assert.deepStrictEqual(Option.map(yield* store.get(c, "old"), (d) => d.document), Option.some({ v: 0 }))
          assert.isTrue(Option.isNone(yield* store.get(c, "keep")))
          assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.TRUE })), ["new", "old"])
          assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.TRUE, ordering: C.asc("v") })), ["old", "new"])
          assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.greater("v", 1) })), ["new"])
          assert.strictEqual(yield* store.count(c), 2)
          return yield* Effect.fail("rollback")
        })).pipe(Effect.exit)
        assert.isTrue(exit._tag === "Failure")
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.TRUE })), ["keep", "old"])
        assert.deepStrictEqual(Option.map(yield* store.get(c, "old"), (d) => d.document), Option.some({ v: 5 }))
        assert.isTrue(Option.isNone(yield* store.get(c, "new")))

        yield* uow.transaction(Effect.gen(function*() {
          yield* store.put(c, "new", { v: 3 }, 3)
          yield* store.put(c, "gone", { v: 4 }, 3)
          assert.isTrue(yield* store.remove(c, "gone"))
        }))
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.TRUE })), ["keep", "new", "old"])
        assert.deepStrictEqual(yield* store.get(c, "new"), Option.some({ id: "new", document: { v: 3 }, updatedAt: 3 }))
      }))

    it.effect("the typed collection encodes and decodes with its schema", () =>
      Effect.gen(function*() {
        const store = yield* DocumentStore.DocumentStore
        const exams = DocumentStore.collection(col(), Exam)
        const at = (ms: number) => new Date(ms)
        yield* exams.put("e1", { subject: "math", scheduledAt: at(2000), room: { name: "A", seats: 30 } })
        yield* exams.put("e2", { subject: "art", scheduledAt: at(1000) })
        yield* exams.put("e3", { subject: "math", scheduledAt: at(3000), room: { name: "B", seats: 10 } })
        assert.deepStrictEqual(yield* exams.get("e2"), Option.some({ subject: "art", scheduledAt: at(1000) }))
        assert.isTrue(Option.isNone(yield* exams.get("nope")))
        // stored encoded
        assert.deepStrictEqual(Option.map(yield* store.get(exams.name, "e2"), (d) => d.document), Option.some({ subject: "art", scheduledAt: 1000 }))
        const math = yield* Stream.runCollect(exams.find({ condition: C.equal("subject", "math"), ordering: C.desc("scheduledAt") }))
        assert.deepStrictEqual(Array.from(math).map((e) => e.scheduledAt.getTime()), [3000, 2000])
        const big = yield* Stream.runCollect(exams.find({ condition: C.greater("room.seats", 20) }))
        assert.deepStrictEqual(Array.from(big).map((e) => e.room?.name), ["A"])
        assert.strictEqual((yield* failure(exams.find({ condition: C.equal("room.colour", 5) }))).reason, "InvalidQuery")
        assert.strictEqual((yield* Effect.flip(exams.count(C.equal("nope", 5)))).reason, "InvalidQuery")
        assert.strictEqual(yield* exams.count(), 3)
        assert.strictEqual(yield* exams.count(C.equal("subject", "math")), 2)
        assert.strictEqual((yield* Effect.flip(exams.put("bad", { subject: "x", scheduledAt: at(NaN) }))).reason, "InvalidInput")
        assert.isTrue(yield* exams.remove("e2"))
        assert.strictEqual(yield* exams.count(), 2)

        // stored data that no longer matches the schema is Corrupt, not a silent value
        yield* store.put(exams.name, "e9", { subject: 9 }, 1)
        assert.strictEqual((yield* Effect.flip(exams.get("e9"))).reason, "Corrupt")
        assert.strictEqual((yield* failure(exams.find({ condition: C.TRUE }))).reason, "Corrupt")
        assert.strictEqual(Array.from(yield* Stream.runCollect(exams.find({ condition: C.equal("subject", "math") }))).length, 2)
      }))

    it.effect("the typed collection joins the unit of work", () =>
      Effect.gen(function*() {
        const uow = yield* UnitOfWork
        const views = DocumentStore.collection(col(), View)
        yield* uow.transaction(Effect.gen(function*() {
          yield* views.put("v1", { title: "T", minutes: 5, tags: ["x"] })
          assert.deepStrictEqual(yield* views.get("v1"), Option.some({ title: "T", minutes: 5, tags: ["x"] }))
          return yield* Effect.fail("rollback")
        })).pipe(Effect.exit)
        assert.isTrue(Option.isNone(yield* views.get("v1")))
        yield* uow.transaction(views.put("v1", { title: "T", minutes: 5, tags: ["x"] }))
        const found = yield* Stream.runCollect(views.find({ condition: C.contains("tags", ["x"]) }))
        assert.deepStrictEqual(Array.from(found).map((v) => v.title), ["T"])
      }))
  })
