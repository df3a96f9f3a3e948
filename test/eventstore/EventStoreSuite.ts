/** Conformance suite of the EventStore port; every backend runs it. */
import { assert, it as baseIt } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Ref } from "effect"
import * as EventStore from "../../src/eventstore/EventStore.ts"
import { Transactions } from "../../src/transaction/Transactions.ts"
import type * as Storage from "../../src/storage/Storage.ts"
import { UnitOfWork } from "../../src/storage/UnitOfWork.ts"

const uuid = (): string => crypto.randomUUID()
const ev = (type: string, data: unknown = {}): EventStore.NewEvent => ({ type, data })

/** Reads everything after `checkpoint` in batches of `batch`. */
export const readAllFrom = (checkpoint: EventStore.Checkpoint, batch = 100) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const out: Array<EventStore.StoredEvent> = []
    let cp = checkpoint
    for (;;) {
      const r = yield* store.readAll(cp, batch)
      out.push(...r.events)
      cp = r.checkpoint
      if (r.events.length < batch) return { events: out, checkpoint: cp }
    }
  })

export const suite = (name: string, layer: Layer.Layer<Storage.Services, unknown>) =>
  baseIt.layer(layer, { timeout: "60 seconds", excludeTestServices: true })(`EventStore (${name})`, (it) => {
    it.effect("appends a new stream at versions 1..n and reads it back", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const id = uuid()
        const r = yield* store.append({
          aggregate: "Exam",
          aggregateId: id,
          expectedVersion: 0,
          now: 1_700_000_000_000,
          events: [ev("ExamCreated", { title: "a", n: 1, nested: { ok: true } }), { type: "ExamUpdated", data: { n: 2 }, metadata: { user: "u1" } }]
        })
        assert.deepStrictEqual(r, { aggregateId: id, fromVersion: 1, toVersion: 2 })
        const events = yield* store.readStream(id)
        assert.deepStrictEqual(events.map((e) => [e.version, e.type, e.aggregate, e.transactionId]), [[1, "ExamCreated", "Exam", null], [2, "ExamUpdated", "Exam", null]])
        assert.deepStrictEqual(events[0]!.data, { title: "a", n: 1, nested: { ok: true } })
        assert.deepStrictEqual(events[1]!.metadata, { user: "u1" })
        assert.strictEqual(events[0]!.createdAt, 1_700_000_000_000)
        assert.isTrue(events[0]!.position > 0 && events[1]!.position > events[0]!.position)
        assert.strictEqual(yield* store.streamVersion(id), 2)
        assert.strictEqual(yield* store.streamVersion(uuid()), 0)
        const after = yield* store.readStream(id, { afterVersion: 1 })
        assert.deepStrictEqual(after.map((e) => e.version), [2])
      }))

    it.effect("a wrong expected version is a Conflict and writes nothing", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const id = uuid()
        yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A"), ev("B")] })
        for (const expectedVersion of [0, 1, 3, 7]) {
          const e = yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion, now: 1, events: [ev("C")] }).pipe(Effect.flip)
          assert.strictEqual(e.reason, "Conflict", `expected ${expectedVersion}`)
          assert.isTrue(e.isRetryable)
        }
        assert.deepStrictEqual((yield* store.readStream(id)).map((e) => e.type), ["A", "B"])
        yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 2, now: 1, events: [ev("C")] })
        assert.strictEqual(yield* store.streamVersion(id), 3)
      }))

    it.effect("bad input is refused with InvalidInput and changes nothing", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const before = yield* store.head
        const id = uuid()
        const cases: ReadonlyArray<EventStore.AppendInput> = [
          { aggregate: "Exam", aggregateId: "not-a-uuid", expectedVersion: 0, now: 1, events: [ev("A")] },
          { aggregate: "Exam", aggregateId: "'; DROP TABLE minos_events; --", expectedVersion: 0, now: 1, events: [ev("A")] },
          { aggregate: "Exam", aggregateId: id, expectedVersion: -1, now: 1, events: [ev("A")] },
          { aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [] },
          { aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("")] },
          { aggregate: "", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A")] },
          { aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A", { big: 10n })] },
          { aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A", { f: () => 1 })] },
          // no backend can hold these: PostgreSQL's jsonb refuses NUL, a lone surrogate is not Unicode
          { aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A", { title: "a\u0000b" })] },
          { aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A", { title: "a\ud800" })] },
          { aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A", { nested: [{ "k\udfff": 1 }] })] }
        ]
        for (const input of cases) {
          const e = yield* store.append(input).pipe(Effect.flip)
          assert.strictEqual(e.reason, "InvalidInput", JSON.stringify(input.aggregateId) + " " + input.expectedVersion)
        }
        assert.strictEqual(yield* store.streamVersion(id), 0)
        assert.strictEqual(yield* store.head, before)
        const e = yield* store.readStream("nope").pipe(Effect.flip)
        assert.strictEqual(e.reason, "InvalidInput")
      }))

    it.effect("appends inside a failed unit of work are rolled back", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const uow = yield* UnitOfWork
        const id = uuid()
        const exit = yield* uow.transaction(
          Effect.gen(function*() {
            yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A")] })
            assert.strictEqual(yield* store.streamVersion(id), 1) // sees its own write
            return yield* Effect.fail("boom")
          })
        ).pipe(Effect.exit)
        assert.isTrue(Exit.isFailure(exit))
        assert.strictEqual(yield* store.streamVersion(id), 0)
        yield* uow.transaction(Effect.all([
          store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A")] }),
          store.append({ aggregate: "Exam", aggregateId: uuid(), expectedVersion: 0, now: 1, events: [ev("A")] })
        ]))
        assert.strictEqual(yield* store.streamVersion(id), 1)
      }))

    it.effect("a conflicting append inside a unit of work fails the whole unit", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const uow = yield* UnitOfWork
        const id = uuid()
        const other = uuid()
        yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A")] })
        const exit = yield* uow.transaction(
          Effect.gen(function*() {
            yield* store.append({ aggregate: "Exam", aggregateId: other, expectedVersion: 0, now: 1, events: [ev("A")] })
            yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("B")] })
          })
        ).pipe(Effect.exit)
        assert.isTrue(Exit.isFailure(exit))
        assert.strictEqual(yield* store.streamVersion(other), 0)
      }))

    it.effect("readAll returns committed events once each, in batches, and head follows", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const start = yield* store.head
        const ids = [uuid(), uuid(), uuid()]
        for (const [i, id] of ids.entries()) {
          yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: i, events: [ev("A"), ev("B"), ev("C")] })
        }
        const { checkpoint, events } = yield* readAllFrom(start, 4)
        const mine = events.filter((e) => ids.includes(e.aggregateId))
        assert.strictEqual(mine.length, 9)
        assert.strictEqual(new Set(events.map((e) => e.position)).size, events.length)
        for (const id of ids) {
          assert.deepStrictEqual(mine.filter((e) => e.aggregateId === id).map((e) => e.version), [1, 2, 3])
        }
        assert.strictEqual(checkpoint, yield* store.head)
        const again = yield* store.readAll(checkpoint, 10)
        assert.strictEqual(again.events.length, 0)
        assert.strictEqual(again.checkpoint, checkpoint)
      }))

    it.effect("parallel appends to many streams: a polling reader misses nothing and sees nothing twice", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const start = yield* store.head
        const streams = Array.from({ length: 40 }, () => uuid())
        const seen = yield* Ref.make<Array<EventStore.StoredEvent>>([])
        const done = yield* Ref.make(false)
        const reader = yield* Effect.gen(function*() {
          let cp = start
          for (;;) {
            const finished = yield* Ref.get(done)
            const r = yield* store.readAll(cp, 50)
            yield* Ref.update(seen, (xs) => [...xs, ...r.events])
            cp = r.checkpoint
            if (finished && r.events.length === 0) return
            if (r.events.length === 0) yield* Effect.sleep("5 millis")
          }
        }).pipe(Effect.forkChild)
        yield* Effect.forEach(streams, (id) =>
          Effect.forEach([1, 2, 3, 4, 5], (v) =>
            store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: v - 1, now: v, events: [ev(`E${v}`)] }), { discard: true }), { concurrency: 16, discard: true })
        yield* Ref.set(done, true)
        yield* Fiber.join(reader)
        const events = (yield* Ref.get(seen)).filter((e) => streams.includes(e.aggregateId))
        assert.strictEqual(events.length, 200)
        assert.strictEqual(new Set(events.map((e) => `${e.aggregateId}/${e.version}`)).size, 200)
        assert.strictEqual(new Set(events.map((e) => e.position)).size, 200)
        // within a stream, positions grow with versions
        for (const id of streams) {
          const mine = events.filter((e) => e.aggregateId === id).sort((a, b) => a.version - b.version)
          for (let i = 1; i < mine.length; i++) assert.isTrue(mine[i]!.position > mine[i - 1]!.position)
        }
      }), 120_000)

    it.effect("writes in a transaction stay invisible outside it until commit", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const tx = yield* Transactions
        const id = uuid()
        yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 0, now: 1, events: [ev("A")] })
        const t = yield* tx.begin()
        const start = yield* store.head
        yield* store.append({ aggregate: "Exam", aggregateId: id, expectedVersion: 1, now: 2, events: [ev("B")], transaction: t.id })
        assert.strictEqual(yield* store.streamVersion(id), 1)
        assert.strictEqual(yield* store.streamVersion(id, { transaction: t.id }), 2)
        const inside = yield* store.readStream(id, { transaction: t.id })
        assert.deepStrictEqual(inside.map((e) => [e.version, e.type, e.transactionId]), [[1, "A", null], [2, "B", t.id]])
        assert.strictEqual((yield* readAllFrom(start)).events.filter((e) => e.aggregateId === id).length, 0)
        yield* tx.commit(t.id)
        const main = yield* store.readStream(id)
        assert.deepStrictEqual(main.map((e) => [e.version, e.type, e.transactionId]), [[1, "A", null], [2, "B", null]])
        const fresh = (yield* readAllFrom(start)).events.filter((e) => e.aggregateId === id)
        assert.deepStrictEqual(fresh.map((e) => e.type), ["B"])
      }))

    it.effect("an append into a transaction that is not pending fails with TransactionClosed", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const tx = yield* Transactions
        const t = yield* tx.begin()
        yield* tx.reject(t.id)
        const e = yield* store.append({ aggregate: "Exam", aggregateId: uuid(), expectedVersion: 0, now: 1, events: [ev("A")], transaction: t.id }).pipe(Effect.flip)
        assert.strictEqual(e.reason, "TransactionClosed")
        const unknown = yield* store.append({ aggregate: "Exam", aggregateId: uuid(), expectedVersion: 0, now: 1, events: [ev("A")], transaction: uuid() }).pipe(Effect.flip)
        assert.strictEqual(unknown.reason, "TransactionClosed")
      }))
  })
