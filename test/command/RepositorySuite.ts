/** The command path on a storage backend: load → decide → append + snapshot + outbox in one transaction. */
import { assert, it as baseIt } from "@effect/vitest"
import { Effect, Layer, Ref, Stream } from "effect"
import * as Message from "../../src/broker/Message.ts"
import * as Entity from "../../src/domain/Entity.ts"
import { EventStore } from "../../src/eventstore/EventStore.ts"
import * as Repository from "../../src/command/Repository.ts"
import { Transactions } from "../../src/transaction/Transactions.ts"
import { Outbox, type OutboxRow } from "../../src/queue/Outbox.ts"
import * as C from "../../src/query/Condition.ts"
import type * as Storage from "../../src/storage/Storage.ts"
import { Counter, Exam, examFields } from "../fixtures/Domain.ts"

const drain = Effect.gen(function*() {
  const outbox = yield* Outbox
  const all: Array<OutboxRow> = []
  for (;;) {
    const n = yield* outbox.process(500, (rows) => Effect.sync(() => all.push(...rows)))
    if (n === 0) return all
  }
})

/** An EventStore that reports `Conflict` for the first `n` appends, to exercise the retry policy. */
const conflicting = (n: number) =>
  Layer.effect(EventStore, Effect.gen(function*() {
    const store = yield* EventStore
    const left = yield* Ref.make(n)
    return EventStore.of({
      ...store,
      append: (input) =>
        Effect.flatMap(Ref.getAndUpdate(left, (x) => x - 1), (x) =>
          x > 0 ? store.append({ ...input, expectedVersion: input.expectedVersion + 1000 }) : store.append(input))
    })
  }))

export const suite = (name: string, layer: Layer.Layer<Storage.Services, unknown>) =>
  baseIt.layer(layer, { timeout: "60 seconds", excludeTestServices: true })(`Repository (${name})`, (it) => {
    it.effect("create stores the event, the snapshot and the domain event in the outbox", () =>
      Effect.gen(function*() {
        const exams = yield* Repository.make(Exam)
        yield* drain
        const created = yield* exams.create(Entity.create(examFields))
        assert.strictEqual(created.version, 1)
        assert.deepStrictEqual(created.events.map((e) => e._tag), ["ExamCreated"])
        const loaded = yield* exams.get(created.id)
        assert.deepStrictEqual(Entity.fieldsOf(loaded.state), examFields)
        assert.strictEqual(loaded.version, 1)
        assert.isNumber(loaded.createdAt)
        assert.strictEqual(loaded.createdAt, loaded.updatedAt)
        const rows = yield* drain
        assert.deepStrictEqual(rows.map((r) => [r.topic, r.key]), [["ExamCreated", created.id]])
        const envelope = JSON.parse(rows[0]!.value) as Message.Envelope
        assert.strictEqual(envelope.version, 1)
        assert.strictEqual(envelope.topic, "ExamCreated")
        assert.isNull(envelope.reply_topic)
        assert.strictEqual(envelope.payload.status, 200)
        assert.strictEqual(rows[0]!.headers["message-id"], envelope.identifier)
        const content = envelope.payload.content as { uuid: string; version: number; action: string; data: { fields: unknown } }
        assert.strictEqual(content.uuid, created.id)
        assert.strictEqual(content.version, 1)
        assert.strictEqual(content.action, "create")
        assert.deepStrictEqual(content.data.fields, examFields)
      }))

    it.effect("update publishes {Name}Updated and one message per changed field; no change, no event", () =>
      Effect.gen(function*() {
        const exams = yield* Repository.make(Exam)
        const { id } = yield* exams.create(Entity.create(examFields))
        yield* drain
        const updated = yield* exams.handle(id, Entity.update({ title: "Geometry", seats: 30 }))
        assert.strictEqual(updated.version, 2)
        assert.deepStrictEqual((yield* drain).map((r) => r.topic), ["ExamUpdated", "ExamUpdated.title", "ExamUpdated.seats"])
        const same = yield* exams.handle(id, Entity.update({ title: "Geometry" }))
        assert.strictEqual(same.version, 2)
        assert.strictEqual(same.events.length, 0)
        assert.strictEqual((yield* drain).length, 0)
        assert.strictEqual(Entity.fieldsOf((yield* exams.get(id)).state)?.title, "Geometry")
      }))

    it.effect("50 concurrent commands on one aggregate: versions 1..51, no gap, no lost update", () =>
      Effect.gen(function*() {
        const counters = yield* Repository.make(Counter)
        const store = yield* EventStore
        const { id } = yield* counters.create({ _tag: "Open", start: 0 })
        const results = yield* Effect.forEach(Array.from({ length: 50 }), () => counters.handle(id, { _tag: "Change", by: 1 }), { concurrency: 50 })
        assert.deepStrictEqual(results.map((r) => r.version).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 2))
        const loaded = yield* counters.get(id)
        assert.strictEqual(loaded.state.value, 50)
        assert.strictEqual(loaded.version, 51)
        assert.deepStrictEqual((yield* store.readStream(id)).map((e) => e.version), Array.from({ length: 51 }, (_, i) => i + 1))
        yield* drain
      }), 120_000)

    it.effect("a stale expectedVersion is a Conflict, not retried, and changes nothing", () =>
      Effect.gen(function*() {
        const exams = yield* Repository.make(Exam)
        const { id } = yield* exams.create(Entity.create(examFields))
        yield* exams.handle(id, Entity.update({ title: "B" }), { expectedVersion: 1 })
        const e = yield* Effect.flip(exams.handle(id, Entity.update({ title: "C" }), { expectedVersion: 1 }))
        assert.strictEqual(e._tag, "EventStoreError")
        assert.strictEqual((e as { reason: string }).reason, "Conflict")
        assert.strictEqual(Entity.fieldsOf((yield* exams.get(id)).state)?.title, "B")
        yield* drain
      }))

    it.effect("conflicts are retried within the bound, then reach the caller", () =>
      Effect.gen(function*() {
        const ok = yield* Effect.gen(function*() {
          const counters = yield* Repository.make(Counter, { maxAttempts: 3 })
          return yield* counters.create({ _tag: "Open", start: 1 })
        }).pipe(Effect.provide(conflicting(2)))
        assert.strictEqual(ok.version, 1)
        const e = yield* Effect.gen(function*() {
          const counters = yield* Repository.make(Counter, { maxAttempts: 3 })
          return yield* counters.handle(ok.id, { _tag: "Change", by: 1 })
        }).pipe(Effect.provide(conflicting(3)), Effect.flip)
        assert.strictEqual((e as { reason: string }).reason, "Conflict")
        const counters = yield* Repository.make(Counter)
        assert.strictEqual((yield* counters.get(ok.id)).version, 1)
        yield* drain
      }))

    it.effect("bad input and domain errors are typed and store nothing", () =>
      Effect.gen(function*() {
        const exams = yield* Repository.make(Exam)
        const counters = yield* Repository.make(Counter)
        const store = yield* EventStore
        yield* drain
        const head = yield* store.head
        const invalid = yield* Effect.flip(exams.create(Entity.create({ ...examFields, durationMinutes: 9999 })))
        assert.strictEqual(invalid._tag, "InvalidCommand")
        assert.strictEqual((invalid as { field: string }).field, "durationMinutes")
        const chosen = yield* Effect.flip(exams.create(Entity.create({ ...examFields, uuid: crypto.randomUUID() })))
        assert.strictEqual(chosen._tag, "InvalidCommand")
        const { id } = yield* counters.create({ _tag: "Open", start: 0 })
        const negative = yield* Effect.flip(counters.handle(id, { _tag: "Change", by: -1 }))
        assert.strictEqual(negative._tag, "WouldGoNegative")
        assert.strictEqual((yield* counters.get(id)).version, 1)
        const notUuid = yield* Effect.flip(exams.handle("x", Entity.update({})))
        assert.strictEqual((notUuid as { reason: string }).reason, "InvalidInput")
        assert.deepStrictEqual((yield* drain).map((r) => r.topic), ["CounterOpened"])
        assert.notStrictEqual(yield* store.head, head)
      }))

    it.effect("deleted and unknown aggregates", () =>
      Effect.gen(function*() {
        const exams = yield* Repository.make(Exam)
        const { id } = yield* exams.create(Entity.create(examFields))
        yield* exams.handle(id, Entity.delete)
        const update = yield* Effect.flip(exams.handle(id, Entity.update({ title: "x" })))
        assert.strictEqual(update._tag, "AlreadyDeleted")
        assert.strictEqual((update as { id: string }).id, id)
        assert.strictEqual((yield* Effect.flip(exams.get(id)))._tag, "AlreadyDeleted")
        const unknown = crypto.randomUUID()
        const nf = yield* Effect.flip(exams.get(unknown))
        assert.strictEqual(nf._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(exams.handle(unknown, Entity.update({ title: "x" }))))._tag, "NotFound")
        yield* drain
      }))

    it.effect("loads the snapshot, then the events after it", () =>
      Effect.gen(function*() {
        const counters = yield* Repository.make(Counter)
        const store = yield* EventStore
        const { id } = yield* counters.create({ _tag: "Open", start: 5 })
        // an event written around the repository (e.g. by an older version of the service)
        yield* store.append({ aggregate: "Counter", aggregateId: id, expectedVersion: 1, now: Date.now(), events: [{ type: "CounterChanged", data: { by: 3 } }] })
        const loaded = yield* counters.get(id)
        assert.strictEqual(loaded.version, 2)
        assert.strictEqual(loaded.state.value, 8)
        const next = yield* counters.handle(id, { _tag: "Change", by: 1 })
        assert.strictEqual(next.version, 3)
        assert.strictEqual(next.state.value, 9)
        yield* drain
      }))

    it.effect("inside a transaction: invisible until commit, events published on commit", () =>
      Effect.gen(function*() {
        const exams = yield* Repository.make(Exam)
        const tx = yield* Transactions
        const { id } = yield* exams.create(Entity.create(examFields))
        yield* drain
        const t = yield* tx.begin()
        yield* exams.handle(id, Entity.update({ status: "scheduled", roomUuid: "room-1" }), { transaction: t.id })
        assert.strictEqual(Entity.fieldsOf((yield* exams.get(id)).state)?.status, "draft")
        assert.strictEqual(Entity.fieldsOf((yield* exams.get(id, { transaction: t.id })).state)?.status, "scheduled")
        assert.strictEqual((yield* drain).length, 0)
        yield* tx.commit(t.id)
        assert.strictEqual(Entity.fieldsOf((yield* exams.get(id)).state)?.status, "scheduled")
        assert.deepStrictEqual((yield* drain).map((r) => r.topic), ["ExamUpdated", "ExamUpdated.status", "ExamUpdated.roomUuid"])
      }))

    it.effect("find decodes the snapshots into states", () =>
      Effect.gen(function*() {
        const exams = yield* Repository.make(Exam)
        const subject = `find-${crypto.randomUUID().slice(0, 8)}`
        for (const d of [30, 60, 90]) yield* exams.create(Entity.create({ ...examFields, subject, durationMinutes: d }))
        const found = yield* exams.find({ condition: C.and(C.equal("subject", subject), C.greater("durationMinutes", 30)), ordering: C.desc("durationMinutes") }).pipe(Stream.runCollect)
        assert.deepStrictEqual([...found].map((l) => Entity.fieldsOf(l.state)?.durationMinutes), [90, 60])
        yield* drain
      }))
  })
