/** Conformance suite of the DocumentStore port; every backend runs it. */
import { assert, it as baseIt } from "@effect/vitest"
import { Effect, Layer, Option, Schema, Stream } from "effect"
import * as DocumentStore from "../../src/readmodel/DocumentStore.ts"
import * as C from "../../src/snapshot/Condition.ts"
import type * as Storage from "../../src/storage/Storage.ts"
import { UnitOfWork } from "../../src/storage/UnitOfWork.ts"

const View = Schema.Struct({ title: Schema.String, minutes: Schema.Int, tags: Schema.Array(Schema.String) })

export const suite = (name: string, layer: Layer.Layer<Storage.Services, unknown>) =>
  baseIt.layer(layer, { timeout: "60 seconds", excludeTestServices: true })(`DocumentStore (${name})`, (it) => {
    const col = () => `c${crypto.randomUUID().slice(0, 8)}`
    const ids = (s: Stream.Stream<DocumentStore.Document, DocumentStore.DocumentStoreError>) => Effect.map(Stream.runCollect(s), (xs) => Array.from(xs).map((d) => d.id))

    it.effect("put, get, replace and remove", () =>
      Effect.gen(function*() {
        const store = yield* DocumentStore.DocumentStore
        const c = col()
        yield* store.put(c, "a", { title: "A", n: 1 }, 1000)
        assert.deepStrictEqual(yield* store.get(c, "a"), Option.some({ id: "a", document: { title: "A", n: 1 }, updatedAt: 1000 }))
        yield* store.put(c, "a", { title: "A2" }, 2000)
        assert.deepStrictEqual(Option.map(yield* store.get(c, "a"), (d) => d.document), Option.some({ title: "A2" }))
        assert.isTrue(yield* store.remove(c, "a"))
        assert.isFalse(yield* store.remove(c, "a"))
        assert.isTrue(Option.isNone(yield* store.get(c, "a")))
        assert.isTrue(Option.isNone(yield* store.get(col(), "a")))
      }))

    it.effect("find with conditions, ordering, limit, offset; count", () =>
      Effect.gen(function*() {
        const store = yield* DocumentStore.DocumentStore
        const c = col()
        for (const [id, minutes, tags] of [["x1", 30, ["a"]], ["x2", 90, ["a", "b"]], ["x3", 60, ["b"]], ["x4", 120, []]] as const) {
          yield* store.put(c, id, { title: id, minutes, tags }, minutes)
        }
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.greater("minutes", 45), ordering: C.asc("minutes") })), ["x3", "x2", "x4"])
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.contains("tags", "b"), ordering: C.desc("minutes") })), ["x2", "x3"])
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.TRUE, ordering: C.asc("updatedAt"), limit: 2, offset: 1 })), ["x3", "x2"])
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.isIn("id", ["x4", "x1"]) })), ["x1", "x4"])
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.like("title", "x_") , ordering: C.desc("id"), limit: 1 })), ["x4"])
        assert.strictEqual(yield* store.count(c), 4)
        assert.strictEqual(yield* store.count(c, C.lower("minutes", 100)), 3)
      }))

    it.effect("paths are checked against the schema; injection attempts are plain values", () =>
      Effect.gen(function*() {
        const store = yield* DocumentStore.DocumentStore
        const c = col()
        yield* store.put(c, "q", { title: "it's", minutes: 1, tags: [] }, 1)
        const unknown = yield* Effect.flip(Stream.runCollect(store.find(c, { condition: C.equal("colour", 1), schema: View })))
        assert.strictEqual(unknown.reason, "InvalidQuery")
        for (const field of ["title'); DROP TABLE minos_documents; --", "a b", ""]) {
          const e = yield* Effect.flip(Stream.runCollect(store.find(c, { condition: C.equal(field, 1) })))
          assert.strictEqual(e.reason, "InvalidQuery")
        }
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.equal("title", "' OR '1'='1") })), [])
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.equal("title", "it's") })), ["q"])
        assert.strictEqual((yield* Effect.flip(store.put("bad name!", "x", {}, 1))).reason, "InvalidInput")
        assert.strictEqual((yield* Effect.flip(store.put(c, "", {}, 1))).reason, "InvalidInput")
        assert.strictEqual((yield* Effect.flip(store.put(c, "x", { n: 10n }, 1))).reason, "InvalidInput")
      }))

    it.effect("writes join the unit of work: rolled back with it, visible inside it", () =>
      Effect.gen(function*() {
        const store = yield* DocumentStore.DocumentStore
        const uow = yield* UnitOfWork
        const c = col()
        yield* store.put(c, "keep", { v: 1 }, 1)
        yield* uow.transaction(Effect.gen(function*() {
          yield* store.put(c, "new", { v: 2 }, 2)
          yield* store.remove(c, "keep")
          assert.isTrue(Option.isSome(yield* store.get(c, "new")))
          assert.isTrue(Option.isNone(yield* store.get(c, "keep")))
          assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.TRUE })), ["new"])
          return yield* Effect.fail("rollback")
        })).pipe(Effect.exit)
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.TRUE })), ["keep"])
        yield* uow.transaction(store.put(c, "new", { v: 3 }, 3))
        assert.deepStrictEqual(yield* ids(store.find(c, { condition: C.TRUE })), ["keep", "new"])
      }))

    it.effect("the typed collection encodes and decodes with its schema", () =>
      Effect.gen(function*() {
        const views = DocumentStore.collection(col(), View)
        yield* views.put("v1", { title: "T", minutes: 5, tags: ["x"] })
        assert.deepStrictEqual(yield* views.get("v1"), Option.some({ title: "T", minutes: 5, tags: ["x"] }))
        const found = yield* Stream.runCollect(views.find({ condition: C.equal("minutes", 5) }))
        assert.deepStrictEqual(Array.from(found).map((v) => v.title), ["T"])
        const bad = yield* Effect.flip(Stream.runCollect(views.find({ condition: C.equal("nope", 5) })))
        assert.strictEqual(bad.reason, "InvalidQuery")
        assert.strictEqual(yield* views.count(), 1)
      }))
  })
