/** Conformance suite of the Inbox port; every backend runs it. */
import { assert, it as baseIt } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Inbox } from "../../src/queue/Inbox.ts"
import type * as Storage from "../../src/storage/Storage.ts"
import { UnitOfWork } from "../../src/storage/UnitOfWork.ts"

const uuid = (): string => crypto.randomUUID()

export const suite = (name: string, layer: Layer.Layer<Storage.Services, unknown>) =>
  baseIt.layer(layer, { timeout: "60 seconds", excludeTestServices: true })(`Inbox (${name})`, (it) => {
    it.effect("a second claim of the same message is a duplicate; groups are independent", () =>
      Effect.gen(function*() {
        const inbox = yield* Inbox
        const id = uuid()
        assert.isTrue(yield* inbox.claim("exam", "ExamCreated", id, 1))
        assert.isFalse(yield* inbox.claim("exam", "ExamCreated", id, 2))
        assert.isTrue(yield* inbox.claim("rooms", "ExamCreated", id, 3))
        assert.isTrue(yield* inbox.claim("exam", "ExamUpdated", id, 4))
      }))

    it.effect("a released claim can be taken again", () =>
      Effect.gen(function*() {
        const inbox = yield* Inbox
        const id = uuid()
        assert.isTrue(yield* inbox.claim("exam", "R", id, 1))
        yield* inbox.release("exam", "R", id)
        yield* inbox.release("exam", "R", uuid())
        assert.isTrue(yield* inbox.claim("exam", "R", id, 2))
        assert.isFalse(yield* inbox.claim("exam", "R", id, 3))
      }))

    it.effect("a claim in a failed unit of work is forgotten with the handler's writes", () =>
      Effect.gen(function*() {
        const inbox = yield* Inbox
        const uow = yield* UnitOfWork
        const id = uuid()
        yield* uow.transaction(Effect.andThen(inbox.claim("exam", "T", id, 1), Effect.fail("handler failed"))).pipe(Effect.exit)
        assert.isTrue(yield* uow.transaction(inbox.claim("exam", "T", id, 2)))
        assert.isFalse(yield* uow.transaction(inbox.claim("exam", "T", id, 3)))
      }))

    it.effect("dead letters are stored, listed, read and removed", () =>
      Effect.gen(function*() {
        const inbox = yield* Inbox
        const topic = `Poison${uuid().slice(0, 8)}`
        const first = yield* inbox.deadLetter({
          group: "exam", topic, key: "k", value: "{\"not\":\"an envelope\"}", headers: { "message-id": "m1" },
          identifier: null, error: "SchemaError: Missing key version", attempts: 3, firstFailedAt: 10, lastFailedAt: 30
        })
        const second = yield* inbox.deadLetter({
          group: "exam", topic, key: null, value: "x", headers: {}, identifier: "id-2", error: "boom", attempts: 1, firstFailedAt: 40, lastFailedAt: 40
        })
        assert.isTrue(second > first)
        const listed = yield* inbox.listDeadLetters({ topic })
        assert.deepStrictEqual(listed.map((l) => l.id), [first, second])
        const l = yield* inbox.getDeadLetter(first)
        assert.deepStrictEqual({ ...l }, {
          id: first, group: "exam", topic, key: "k", value: "{\"not\":\"an envelope\"}", headers: { "message-id": "m1" },
          identifier: null, error: "SchemaError: Missing key version", attempts: 3, firstFailedAt: 10, lastFailedAt: 30
        })
        yield* inbox.removeDeadLetter(first)
        assert.deepStrictEqual((yield* inbox.listDeadLetters({ topic })).map((x) => x.id), [second])
        assert.strictEqual((yield* Effect.flip(inbox.getDeadLetter(first))).reason, "NotFound")
        assert.strictEqual((yield* Effect.flip(inbox.removeDeadLetter(first))).reason, "NotFound")
        assert.strictEqual((yield* inbox.listDeadLetters({ topic, limit: 1 })).length, 1)
      }))

    it.effect("prune forgets old claims only", () =>
      Effect.gen(function*() {
        const inbox = yield* Inbox
        const old = uuid()
        const fresh = uuid()
        yield* inbox.claim("g", "P", old, 1_000)
        yield* inbox.claim("g", "P", fresh, 5_000_000_000_000)
        assert.isAtLeast(yield* inbox.prune(2_000), 1)
        assert.isTrue(yield* inbox.claim("g", "P", old, 3))
        assert.isFalse(yield* inbox.claim("g", "P", fresh, 4))
      }))
  })
