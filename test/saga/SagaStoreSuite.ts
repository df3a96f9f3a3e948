/** Conformance suite of the SagaStore port; every backend runs it. */
import { assert, it as baseIt } from "@effect/vitest"
import { Effect, Exit, type Layer, Option } from "effect"
import { type ExecutionRecord, SagaStore, type SagaStoreError } from "../../src/saga/SagaStore.ts"

const uuid = (): string => crypto.randomUUID()
/** A saga name no other test uses, so `list({ saga })` sees only this test's executions. */
const sagaName = (what: string): string => `${what}-${uuid().slice(0, 8)}`

/** Times of the tests that do not look at `due` or `prune` (those use small numbers of their own). */
const T = 1_700_000_000_000

const record = (overrides: Partial<Omit<ExecutionRecord, "revision">> = {}): Omit<ExecutionRecord, "revision"> => ({
  id: uuid(),
  saga: "AddOrder",
  version: 1,
  status: "created",
  deadline: null,
  data: { steps: [] },
  createdAt: T,
  updatedAt: T,
  ...overrides
})

const reasonOf = <A>(effect: Effect.Effect<A, SagaStoreError>) => Effect.map(Effect.flip(effect), (e) => e.reason)

export const suite = (name: string, layer: Layer.Layer<SagaStore, unknown>) =>
  baseIt.layer(layer, { timeout: "60 seconds", excludeTestServices: true })(`SagaStore (${name})`, (it) => {
    it.effect("create stores revision 1 and get returns the record with its data", () =>
      Effect.gen(function*() {
        const store = yield* SagaStore
        const data = {
          steps: [{ name: "reserve", ok: true, reply: { id: uuid(), n: 1.5, big: 2 ** 53 - 1, neg: -7 } }, null, "text ü 😀"],
          context: {},
          empty: [],
          nothing: null
        }
        const input = record({ status: "running", data, createdAt: T + 1, updatedAt: T + 2 })
        const created = yield* store.create(input)
        assert.deepStrictEqual({ ...created }, { ...input, revision: 1 })
        const got = yield* store.get(input.id)
        assert.isTrue(Option.isSome(got))
        assert.deepStrictEqual({ ...Option.getOrThrow(got) }, { ...input, revision: 1 })
        assert.isTrue(Option.isNone(yield* store.get(uuid())))
        assert.isTrue(Option.isNone(yield* store.get("not-a-uuid")))
      }))

    it.effect("the stored data is a copy: changing the caller's object changes nothing", () =>
      Effect.gen(function*() {
        const store = yield* SagaStore
        const data = { steps: ["a"] }
        const input = record({ data })
        yield* store.create(input)
        data.steps.push("b")
        assert.deepStrictEqual(Option.getOrThrow(yield* store.get(input.id)).data, { steps: ["a"] })
      }))

    it.effect("a second create of the same id is a Conflict and keeps the first", () =>
      Effect.gen(function*() {
        const store = yield* SagaStore
        const first = record({ data: { first: true } })
        yield* store.create(first)
        assert.strictEqual(yield* reasonOf(store.create({ ...first, saga: "Other", data: { first: false } })), "Conflict")
        const got = Option.getOrThrow(yield* store.get(first.id))
        assert.deepStrictEqual(got.data, { first: true })
        assert.strictEqual(got.saga, "AddOrder")
        assert.strictEqual(got.revision, 1)
      }))

    it.effect("put with the stored revision replaces the record and increments the revision", () =>
      Effect.gen(function*() {
        const store = yield* SagaStore
        const input = record()
        yield* store.create(input)
        const paused = { ...input, status: "paused" as const, deadline: T + 60_000, data: { steps: ["reserve"] }, updatedAt: T + 10 }
        const second = yield* store.put(paused, 1)
        assert.deepStrictEqual({ ...second }, { ...paused, revision: 2 })
        const finished = { ...paused, status: "finished" as const, deadline: null, data: { steps: ["reserve", "pay"] }, updatedAt: T + 20 }
        const third = yield* store.put(finished, 2)
        assert.strictEqual(third.revision, 3)
        assert.deepStrictEqual({ ...Option.getOrThrow(yield* store.get(input.id)) }, { ...finished, revision: 3 })
      }))

    it.effect("put keeps createdAt as created", () =>
      Effect.gen(function*() {
        const store = yield* SagaStore
        const input = record({ createdAt: T + 5 })
        yield* store.create(input)
        const next = yield* store.put({ ...input, status: "running", createdAt: T + 999, updatedAt: T + 6 }, 1)
        assert.strictEqual(next.createdAt, T + 5)
        assert.strictEqual(Option.getOrThrow(yield* store.get(input.id)).createdAt, T + 5)
      }))

    it.effect("put with a stale revision is a Conflict and changes nothing", () =>
      Effect.gen(function*() {
        const store = yield* SagaStore
        const input = record()
        yield* store.create(input)
        yield* store.put({ ...input, status: "running", updatedAt: T + 1, data: { by: "first" } }, 1)
        assert.strictEqual(yield* reasonOf(store.put({ ...input, status: "errored", updatedAt: T + 2, data: { by: "late" } }, 1)), "Conflict")
        assert.strictEqual(yield* reasonOf(store.put({ ...input, status: "errored", updatedAt: T + 2, data: { by: "ahead" } }, 7)), "Conflict")
        const got = Option.getOrThrow(yield* store.get(input.id))
        assert.strictEqual(got.revision, 2)
        assert.strictEqual(got.status, "running")
        assert.deepStrictEqual(got.data, { by: "first" })
        assert.strictEqual(got.updatedAt, T + 1)
      }))

    it.effect("put of an unknown id is NotFound and creates nothing", () =>
      Effect.gen(function*() {
        const store = yield* SagaStore
        const input = record()
        assert.strictEqual(yield* reasonOf(store.put(input, 1)), "NotFound")
        assert.isTrue(Option.isNone(yield* store.get(input.id)))
      }))

    it.effect("list filters by status and saga, oldest first, up to the limit", () =>
      Effect.gen(function*() {
        const store = yield* SagaStore
        const saga = sagaName("List")
        // written out of order, listed by createdAt
        const d = record({ saga, status: "finished", createdAt: T + 40 })
        const b = record({ saga, status: "paused", deadline: T + 1_000_000, createdAt: T + 20 })
        const a = record({ saga, status: "running", createdAt: T + 10 })
        const c = record({ saga, status: "paused", deadline: T + 1_000_000, createdAt: T + 30 })
        const other = record({ saga: sagaName("Other"), status: "paused", deadline: T + 1_000_000, createdAt: T + 15 })
        for (const r of [d, b, a, c, other]) yield* store.create(r)

        const ids = (rs: ReadonlyArray<ExecutionRecord>) => rs.map((r) => r.id)
        assert.deepStrictEqual(ids(yield* store.list({ saga })), [a.id, b.id, c.id, d.id])
        assert.deepStrictEqual(ids(yield* store.list({ saga, status: "paused" })), [b.id, c.id])
        assert.deepStrictEqual(ids(yield* store.list({ saga, limit: 2 })), [a.id, b.id])
        assert.deepStrictEqual(ids(yield* store.list({ saga, status: "paused", limit: 1 })), [b.id])
        assert.deepStrictEqual(ids(yield* store.list({ saga, status: "errored" })), [])
        assert.deepStrictEqual(ids(yield* store.list({ saga, limit: 0 })), [])

        // without a saga: every saga's executions of that status, oldest first
        const paused = yield* store.list({ status: "paused" })
        assert.isTrue(paused.every((r) => r.status === "paused"))
        assert.deepStrictEqual(ids(paused.filter((r) => [b.id, c.id, other.id].includes(r.id))), [other.id, b.id, c.id])
        assert.isTrue(paused.every((r, i) => i === 0 || paused[i - 1]!.createdAt <= r.createdAt))
        const all = yield* store.list()
        assert.deepStrictEqual(ids(all.filter((r) => [a.id, b.id, c.id, d.id, other.id].includes(r.id))), [a.id, other.id, b.id, c.id, d.id])
        assert.isTrue(all.every((r, i) => i === 0 || all[i - 1]!.createdAt <= r.createdAt))
        assert.strictEqual((yield* store.list({ limit: 3 })).length, 3)

        // a status change moves the execution between the status lists
        yield* store.put({ ...b, status: "finished", deadline: null, updatedAt: T + 50 }, 1)
        assert.deepStrictEqual(ids(yield* store.list({ saga, status: "paused" })), [c.id])
        assert.deepStrictEqual(ids(yield* store.list({ saga, status: "finished" })), [b.id, d.id])
      }))

    it.effect("a paused execution leaves the due list when it moves on or is rescheduled", () =>
      Effect.gen(function*() {
        const store = yield* SagaStore
        const dueIds = (at: number) => Effect.map(store.due(at), (rs) => rs.map((r) => r.id))
        const input = record({ status: "paused", deadline: T + 100 })
        yield* store.create(input)
        assert.include(yield* dueIds(T + 100), input.id)
        // a later deadline: not due at the old one any more
        yield* store.put({ ...input, deadline: T + 500, updatedAt: T + 1 }, 1)
        assert.notInclude(yield* dueIds(T + 100), input.id)
        assert.include(yield* dueIds(T + 500), input.id)
        // running with its deadline still set is not due
        yield* store.put({ ...input, status: "running", deadline: T + 500, updatedAt: T + 2 }, 2)
        assert.notInclude(yield* dueIds(T + 1_000), input.id)
        yield* store.put({ ...input, status: "paused", deadline: T + 500, updatedAt: T + 3 }, 3)
        assert.include(yield* dueIds(T + 1_000), input.id)
        yield* store.put({ ...input, status: "finished", deadline: T + 500, updatedAt: T + 4 }, 4)
        assert.notInclude(yield* dueIds(T + 1_000), input.id)
        assert.notInclude(yield* dueIds(Number.MAX_SAFE_INTEGER), input.id)
      }))

    it.effect("due returns only paused executions with a deadline at or before the time, earliest first", () =>
      Effect.gen(function*() {
        const store = yield* SagaStore
        // small deadlines: the other tests' paused executions are all due after these
        const late = record({ status: "paused", deadline: 2_000 })
        const early = record({ status: "paused", deadline: 50 })
        const exact = record({ status: "paused", deadline: 1_000 })
        const middle = record({ status: "paused", deadline: 100 })
        const running = record({ status: "running", deadline: 60 })
        const finished = record({ status: "finished", deadline: 70 })
        const noDeadline = record({ status: "paused", deadline: null })
        for (const r of [late, early, exact, middle, running, finished, noDeadline]) yield* store.create(r)

        const due = yield* store.due(1_000)
        assert.deepStrictEqual(due.map((r) => r.id), [early.id, middle.id, exact.id])
        assert.deepStrictEqual({ ...due[0]! }, { ...early, revision: 1 })
        assert.deepStrictEqual((yield* store.due(1_000, 2)).map((r) => r.id), [early.id, middle.id])
        assert.deepStrictEqual((yield* store.due(1_000, 0)), [])
        assert.deepStrictEqual((yield* store.due(49)), [])
        const later = yield* store.due(T * 10)
        assert.isTrue(later.every((r) => r.status === "paused" && r.deadline !== null && r.deadline <= T * 10))
        assert.isTrue(later.every((r, i) => i === 0 || later[i - 1]!.deadline! <= r.deadline!))
        assert.deepStrictEqual(later.slice(0, 4).map((r) => r.id), [early.id, middle.id, exact.id, late.id])
        assert.notInclude(later.map((r) => r.id), noDeadline.id)
      }))

    it.effect("prune removes only finished and errored executions updated before the cutoff", () =>
      Effect.gen(function*() {
        const store = yield* SagaStore
        // small times: every other test's executions were updated after the cutoff
        const oldFinished = record({ status: "finished", createdAt: 1, updatedAt: 10 })
        const oldErrored = record({ status: "errored", createdAt: 1, updatedAt: 20 })
        const atCutoff = record({ status: "finished", createdAt: 1, updatedAt: 500 })
        const newFinished = record({ status: "finished", createdAt: 1, updatedAt: 1_000 })
        const oldPaused = record({ status: "paused", deadline: null, createdAt: 1, updatedAt: 10 })
        const oldRunning = record({ status: "running", createdAt: 1, updatedAt: 10 })
        const oldCreated = record({ status: "created", createdAt: 1, updatedAt: 10 })
        const all = [oldFinished, oldErrored, atCutoff, newFinished, oldPaused, oldRunning, oldCreated]
        for (const r of all) yield* store.create(r)

        assert.strictEqual(yield* store.prune(500), 2)
        for (const r of all) {
          assert.strictEqual(Option.isSome(yield* store.get(r.id)), r !== oldFinished && r !== oldErrored, r.status)
        }
        const finished = (yield* store.list({ status: "finished" })).map((r) => r.id)
        assert.notInclude(finished, oldFinished.id)
        assert.include(finished, atCutoff.id)
        assert.strictEqual(yield* store.prune(500), 0)
        // the id is free again
        yield* store.create(oldFinished)
      }))

    it.effect("of concurrent puts with the same expected revision exactly one wins", () =>
      Effect.gen(function*() {
        const store = yield* SagaStore
        const input = record({ status: "paused", deadline: T + 1_000_000 })
        yield* store.create(input)
        const exits = yield* Effect.all(
          Array.from({ length: 10 }, (_, i) => Effect.exit(store.put({ ...input, status: "running", deadline: null, data: { writer: i }, updatedAt: T + i }, 1))),
          { concurrency: "unbounded" }
        )
        const won = exits.flatMap((e, i) => (Exit.isSuccess(e) ? [i] : []))
        assert.strictEqual(won.length, 1)
        for (const e of exits) {
          if (Exit.isFailure(e)) assert.strictEqual(Exit.findErrorOption(e).pipe(Option.map((x) => x.reason), Option.getOrUndefined), "Conflict")
        }
        const got = Option.getOrThrow(yield* store.get(input.id))
        assert.strictEqual(got.revision, 2)
        assert.deepStrictEqual(got.data, { writer: won[0] })
        assert.notInclude((yield* store.due(T * 10)).map((r) => r.id), input.id)
      }))

    it.effect("invalid input is InvalidInput and stores nothing", () =>
      Effect.gen(function*() {
        const store = yield* SagaStore
        const good = record()
        class Custom {
          readonly x = 1
        }
        const bad: ReadonlyArray<Omit<ExecutionRecord, "revision">> = [
          { ...good, id: "not-a-uuid" },
          { ...good, saga: "" },
          { ...good, version: 0 },
          { ...good, version: 1.5 },
          { ...good, status: "sleeping" as never },
          { ...good, deadline: Number.NaN },
          { ...good, deadline: Number.POSITIVE_INFINITY },
          { ...good, createdAt: Number.NaN },
          { ...good, data: undefined },
          { ...good, data: { f: () => 1 } },
          { ...good, data: { n: Number.NaN } },
          { ...good, data: { u: undefined } },
          { ...good, data: new Custom() },
          { ...good, data: { when: new Date(0) } }
        ]
        for (const r of bad) {
          assert.strictEqual(yield* reasonOf(store.create(r)), "InvalidInput", JSON.stringify(r))
        }
        assert.isTrue(Option.isNone(yield* store.get(good.id)))

        yield* store.create(good)
        for (const r of bad.filter((r) => r.id === good.id)) {
          assert.strictEqual(yield* reasonOf(store.put(r, 1)), "InvalidInput")
        }
        assert.strictEqual(yield* reasonOf(store.put(good, 0)), "InvalidInput")
        assert.strictEqual(yield* reasonOf(store.list({ limit: -1 })), "InvalidInput")
        assert.strictEqual(yield* reasonOf(store.list({ status: "sleeping" as never })), "InvalidInput")
        assert.strictEqual(yield* reasonOf(store.due(Number.NaN)), "InvalidInput")
        assert.strictEqual(yield* reasonOf(store.due(T, 1.5)), "InvalidInput")
        assert.strictEqual(yield* reasonOf(store.prune(Number.NaN)), "InvalidInput")
        assert.strictEqual(Option.getOrThrow(yield* store.get(good.id)).revision, 1)
      }))
  })
