/**
 * Sagas across two services in one process (in-process broker, LMDB stores): the coordinator `hub`
 * and the participant `desk`, each with its own storage, sharing the broker.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Ref, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Message from "../../src/broker/Message.ts"
import { Broker } from "../../src/broker/Broker.ts"
import * as MemoryBroker from "../../src/memory/MemoryBroker.ts"
import * as Replies from "../../src/messaging/Replies.ts"
import * as RequestClient from "../../src/messaging/RequestClient.ts"
import * as MinosConfig from "../../src/config/MinosConfig.ts"
import * as Entity from "../../src/domain/Entity.ts"
import * as Repository from "../../src/command/Repository.ts"
import * as Router from "../../src/router/Router.ts"
import * as Microservice from "../../src/runtime/Microservice.ts"
import * as Saga from "../../src/saga/Saga.ts"
import { SagaManager } from "../../src/saga/SagaManager.ts"
import * as Lmdb from "../../src/lmdb/Lmdb.ts"
import * as C from "../../src/query/Condition.ts"
import { settings } from "../support/Services.ts"

const Desk = Entity.make("Desk", { owner: Schema.String, seats: Schema.Int })
class Desks extends Context.Service<Desks, Repository.Repository<typeof Desk>>()("test/Desks") {}
const Note = Entity.make("Note", { text: Schema.String })
class Notes extends Context.Service<Notes, Repository.Repository<typeof Note>>()("test/Notes") {}

/** What the participant's compensations saw. */
class Log extends Context.Service<Log, Ref.Ref<ReadonlyArray<string>>>()("test/Log") {}

const Ctx = Schema.Struct({ owner: Schema.String, seats: Schema.Int, deskUuid: Schema.optional(Schema.String), noteUuid: Schema.optional(Schema.String) })
type Ctx = typeof Ctx.Type

class Full extends Schema.TaggedError<Full>()("Full", { seats: Schema.Int }) {}

const deskHandlers = [
  Router.command("TakeDesk", { payload: Schema.Struct({ owner: Schema.String, seats: Schema.Int }), success: Schema.Struct({ deskUuid: Schema.String }) }, ({ owner, seats }) =>
    Effect.gen(function*() {
      if (seats > 10) return yield* Effect.fail(new Full({ seats }))
      const h = yield* Effect.flatMap(Desks, (d) => d.create(Entity.create({ owner, seats })))
      return { deskUuid: h.id }
    })),
  Router.command("FreeDesk", { payload: Schema.Struct({ owner: Schema.String }) }, ({ owner }) =>
    Effect.flatMap(Log, (log) => Ref.update(log, (l) => [...l, `FreeDesk ${owner}`])))
] as const

const deskCount = (owner: string) =>
  Effect.flatMap(Desks, (d) => Stream.runCollect(d.find({ condition: C.equal("owner", owner) }))).pipe(Effect.map((xs) => Array.from(xs).length))

const temp = (p: string) => mkdtempSync(join(tmpdir(), p))

/** The participant `desk`, on its own storage, sharing the broker. */
// Layer.fresh: each service gets its own instance of the shared layer values
const deskService = Microservice.layerWith({ handlers: deskHandlers, services: Repository.layer(Desks, Desk) }).pipe(
  Layer.provideMerge(Layer.fresh(Microservice.layerRequestClient)),
  Layer.provideMerge(Layer.mergeAll(Lmdb.layer({ path: temp("desk-"), noSync: true }), Layer.fresh(Replies.layer))),
  Layer.provideMerge(MinosConfig.layerSettings({ ...settings({ name: "desk" }), saga: { storage: { backend: "lmdb", path: join(temp("desk-saga-"), "sagas") } } }))
)

const hubInfra = (name: string) =>
  Layer.mergeAll(Lmdb.layer({ path: temp("hub-"), noSync: true }), Layer.fresh(Replies.layer)).pipe(
    Layer.provideMerge(MinosConfig.layerSettings({ ...settings({ name }), saga: { storage: { backend: "lmdb", path: join(temp("hub-saga-"), "sagas") } } }))
  )

const hub = (sagas: ReadonlyArray<Saga.Definition.Any>) =>
  Microservice.layerWith({ handlers: [], services: Layer.mergeAll(Repository.layer(Notes, Note), Repository.layer(Desks, Desk)), sagas }).pipe(
    Layer.provideMerge(Layer.fresh(Microservice.layerRequestClient)),
    Layer.provideMerge(hubInfra("hub"))
  )

const build = <C>(b: Saga.Builder<C, any, any>) => b.build

const takeDesk = Saga.make("TakeDesk", { version: 1, context: Ctx })
  .remote("TakeDesk", (c) => ({ topic: "TakeDesk", content: { owner: c.owner, seats: c.seats } }))
  .onSuccess((c, reply) => Effect.succeed({ ...c, deskUuid: (reply as { deskUuid: string }).deskUuid }))
  .onFailure((c) => ({ topic: "FreeDesk", content: { owner: c.owner } }))
  .local("WriteNote", (c) =>
    Effect.gen(function*() {
      if (c.owner.startsWith("fail")) return yield* Effect.fail("the note cannot be written")
      const h = yield* Effect.flatMap(Notes, (n) => n.create(Entity.create({ text: `${c.owner} has desk ${c.deskUuid}` })))
      return { ...c, noteUuid: h.id }
    }))
  .onFailure((c) => Effect.flatMap(Log, (log) => Ref.update(log, (l) => [...l, `undo note ${c.owner}`])))

const TakeDesk = build(takeDesk)

const withLog = Layer.effect(Log, Ref.make<ReadonlyArray<string>>([]))

describe("Saga definitions", () => {
  it.effect("refuses a saga without steps, hooks set twice, and hooks on the wrong step", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* Effect.flip(Saga.check(Saga.make("Empty", { version: 1, context: Ctx }).build))).step, "(saga)")
      const twice = yield* Effect.flip(Saga.check(Saga.make("Twice", { version: 1, context: Ctx }).remote("A", () => ({ topic: "A", content: {} })).onSuccess(Effect.succeed).onSuccess(Effect.succeed).build))
      assert.include(twice.message, "set twice")
      const wrong = yield* Effect.flip(Saga.check(Saga.make("Wrong", { version: 1, context: Ctx }).local("L", Effect.succeed).onSuccess(Effect.succeed).build))
      assert.include(wrong.message, "does not apply")
      const before = yield* Effect.flip(Saga.check(Saga.make("Before", { version: 1, context: Ctx }).onFailure(() => Effect.void).build))
      assert.include(before.message, "before any step")
      const dup = yield* Effect.flip(Saga.check(Saga.make("Dup", { version: 1, context: Ctx }).local("L", Effect.succeed).local("L", Effect.succeed).build))
      assert.include(dup.message, "same name")
      const badVersion = yield* Effect.flip(Saga.check(Saga.make("V", { version: 0, context: Ctx }).local("L", Effect.succeed).build))
      assert.include(badVersion.message, "Version")
    }))

  it("draws a Mermaid flowchart", () => {
    const text = Saga.toMermaid(TakeDesk)
    assert.include(text, "flowchart TD")
    assert.include(text, "TakeDesk (remote)")
    assert.include(text, "WriteNote (local)")
    assert.include(text, "compensate TakeDesk")
  })
})

layer(Layer.mergeAll(deskService, hub([TakeDesk])).pipe(Layer.provideMerge(withLog), Layer.provideMerge(MemoryBroker.layer())), { timeout: "60 seconds", excludeTestServices: true })("SagaManager (live)", (it) => {
  it.effect("runs a remote and a local step, then commits both participants", () =>
    Effect.gen(function*() {
      const manager = yield* SagaManager
      const done = yield* manager.run(TakeDesk, { owner: "ada", seats: 2 }, { timeout: "20 seconds" })
      assert.strictEqual(done.status, "finished")
      assert.deepStrictEqual(done.steps.map((s) => [s.name, s.status]), [["TakeDesk", "finished"], ["WriteNote", "finished"]])
      assert.deepStrictEqual(done.participants, ["desk"])
      const ctx = done.context as Ctx
      assert.isString(ctx.deskUuid)
      const note = yield* Effect.flatMap(Notes, (n) => n.get(ctx.noteUuid!))
      assert.include(Entity.fieldsOf(note.state)!.text, "ada has desk")
    }))

  it.effect("a 400 reply without onError fails the saga; nothing stays written", () =>
    Effect.gen(function*() {
      const manager = yield* SagaManager
      const e = yield* Effect.flip(manager.run(TakeDesk, { owner: "bob", seats: 99 }, { timeout: "20 seconds" }))
      assert.strictEqual(e.reason, "Failed")
      const exec = yield* manager.get(e.execution!)
      // failed and undone: compensated, not errored
      assert.strictEqual(exec.status, "compensated")
      assert.strictEqual(exec.failure?.reason, "StepFailed")
      assert.include(exec.error!, "Full")
      // the failed remote step is compensated too (its command may have had effects)
      assert.strictEqual(exec.steps[0]!.status, "compensated")
      assert.deepStrictEqual(yield* Effect.flatMap(Log, Ref.get), ["FreeDesk bob"])
    }))

  it.effect("a failing local step compensates the completed steps in reverse order and rejects the transaction", () =>
    Effect.gen(function*() {
      const manager = yield* SagaManager
      const log = yield* Log
      yield* Ref.set(log, [])
      const e = yield* Effect.flip(manager.run(TakeDesk, { owner: "fail-carol", seats: 1 }, { timeout: "20 seconds" }))
      const exec = yield* manager.get(e.execution!)
      assert.deepStrictEqual(exec.steps.map((s) => [s.name, s.status]), [["TakeDesk", "compensated"], ["WriteNote", "errored"]])
      assert.deepStrictEqual(yield* Ref.get(log), ["FreeDesk fail-carol"])
      // the desk was created inside the saga's transaction on the participant, and rejected with it
      yield* Effect.sleep("300 millis")
      assert.strictEqual(yield* deskCount("fail-carol"), 0)
    }))

  it.effect("late and duplicate replies are ignored", () =>
    Effect.gen(function*() {
      const manager = yield* SagaManager
      const broker = yield* Broker
      const done = yield* manager.run(TakeDesk, { owner: "dan", seats: 1 }, { timeout: "20 seconds" })
      // a reply for the finished execution, on the coordinator's reply topic
      yield* broker.publish([{
        topic: "HubReply", key: done.id,
        value: Message.encode(Message.make({ topic: "HubReply", identifier: crypto.randomUUID(), content: { deskUuid: "x" }, headers: { saga: done.id } })),
        headers: {}
      }])
      yield* Effect.sleep("300 millis")
      const again = yield* manager.get(done.id)
      assert.strictEqual(again.updatedAt, done.updatedAt)
      assert.strictEqual(again.status, "finished")
    }))

  it.effect("lists executions by status", () =>
    Effect.gen(function*() {
      const manager = yield* SagaManager
      const finished = yield* manager.list({ status: "finished" })
      assert.isTrue(finished.length >= 2)
      assert.isTrue(finished.every((x) => x.status === "finished"))
    }))
})

const conditional = build(
  Saga.make("Conditional", { version: 1, context: Ctx })
    .conditional("Size", [
      { when: (c) => c.seats > 5, saga: Saga.make("Big", { version: 1, context: Ctx }).local("Big", (c) => Effect.succeed({ ...c, owner: `${c.owner}:big` })) }
    ], Saga.make("Small", { version: 1, context: Ctx }).local("Small", (c) => Effect.succeed({ ...c, owner: `${c.owner}:small` })))
    .local("After", (c) => Effect.succeed({ ...c, owner: `${c.owner}:after` }))
)

const tolerant = build(
  Saga.make("Tolerant", { version: 1, context: Ctx })
    .remote("TakeDesk", (c) => ({ topic: "TakeDesk", content: { owner: c.owner, seats: c.seats } }))
    .onError((c) => Effect.succeed({ ...c, owner: `${c.owner}:no-desk` }))
    .local("Note", (c) => Effect.succeed({ ...c, noteUuid: "none" }))
)

const slow = (version: number) => build(
  Saga.make("Slow", { version, context: Ctx, timeout: "10 minutes" })
    .remote("Nowhere", (c) => ({ topic: "NobodyHandlesThis", content: { owner: c.owner } }))
    .withTimeout("5 seconds")
)

layer(Layer.mergeAll(deskService, hub([conditional, tolerant])).pipe(Layer.provideMerge(withLog), Layer.provideMerge(MemoryBroker.layer())), { timeout: "60 seconds", excludeTestServices: true })("SagaManager steps", (it) => {
  it.effect("conditional steps run the first branch that holds, else the otherwise branch", () =>
    Effect.gen(function*() {
      const manager = yield* SagaManager
      const big = yield* manager.run(conditional, { owner: "x", seats: 9 }, { timeout: "10 seconds" })
      assert.strictEqual((big.context as Ctx).owner, "x:big:after")
      assert.deepStrictEqual(big.steps.map((s) => s.name), ["Big", "After"])
      const small = yield* manager.run(conditional, { owner: "y", seats: 1 }, { timeout: "10 seconds" })
      assert.strictEqual((small.context as Ctx).owner, "y:small:after")
    }))

  it.effect("onError turns a 400 reply into a way forward", () =>
    Effect.gen(function*() {
      const manager = yield* SagaManager
      const done = yield* manager.run(tolerant, { owner: "zed", seats: 99 }, { timeout: "10 seconds" })
      assert.strictEqual(done.status, "finished")
      assert.strictEqual((done.context as Ctx).owner, "zed:no-desk")
    }))

  it.effect("an unknown definition or a bad context is refused up front", () =>
    Effect.gen(function*() {
      const manager = yield* SagaManager
      assert.strictEqual((yield* Effect.flip(manager.start(TakeDesk, { owner: "a", seats: 1 }))).reason, "UnknownDefinition")
      assert.strictEqual((yield* Effect.flip(manager.start(conditional, { owner: "a", seats: 1.5 } as Ctx))).reason, "InvalidContext")
      assert.strictEqual((yield* Effect.flip(manager.get(crypto.randomUUID()))).reason, "NotFound")
    }))
})

const sagaLong = build(
  Saga.make("Long", { version: 1, context: Ctx, timeout: "1 minute" })
    .remote("First", (c) => ({ topic: "NobodyHandlesThis", content: { owner: c.owner } }))
    .withTimeout("10 minutes")
)

// TestClock: the manager's timers run on the test clock, so time is moved by hand
layer(hub([slow(1), sagaLong]).pipe(Layer.provideMerge(withLog), Layer.provideMerge(MemoryBroker.layer())), { timeout: "60 seconds" })("SagaManager timeouts (TestClock)", (it) => {
  it.effect("a remote step without a reply in time fails the saga", () =>
    Effect.gen(function*() {
      const manager = yield* SagaManager
      const id = yield* manager.start(slow(1), { owner: "t", seats: 1 })
      yield* TestClock.adjust("4 seconds")
      assert.strictEqual((yield* manager.get(id)).status, "paused")
      yield* TestClock.adjust("2 seconds")
      const done = yield* manager.await(id, "1 minute")
      assert.strictEqual(done.status, "compensated")
      assert.strictEqual(done.failure?.reason, "Timeout")
      assert.include(done.error!, "no reply to NobodyHandlesThis in time")
    }))

  it.effect("the saga's own timeout ends an execution whose step may wait longer", () =>
    Effect.gen(function*() {
      const manager = yield* SagaManager
      const id = yield* manager.start(sagaLong, { owner: "l", seats: 1 })
      yield* TestClock.adjust("59 seconds")
      assert.strictEqual((yield* manager.get(id)).status, "paused")
      yield* TestClock.adjust("2 seconds")
      const done = yield* manager.await(id, "1 minute")
      assert.strictEqual(done.status, "compensated")
      assert.include(done.error!, "the saga timed out")
    }))
})

const quick = (version: number) => build(
  Saga.make("Quick", { version, context: Ctx })
    .remote("Nowhere", (c) => ({ topic: "NobodyHandlesThisEither", content: { owner: c.owner } }))
    .withTimeout("1 second")
)

describe("SagaManager versions", () => {
  it.live("an execution of a version that is no longer registered fails explicitly instead of running new code", () =>
    Effect.scoped(Effect.gen(function*() {
      const infra = yield* Layer.build(Layer.fresh(Microservice.layerRequestClient).pipe(Layer.provideMerge(hubInfra("versions")), Layer.provideMerge(MemoryBroker.layer()), Layer.provideMerge(withLog)))
      const provided = Layer.succeedContext(infra)
      // version 1 starts an execution, then the service stops
      const id = yield* Effect.scoped(Effect.gen(function*() {
        const v1 = yield* Layer.build(Microservice.layerWith({ handlers: [], sagas: [quick(1)] }).pipe(Layer.provide(provided)))
        const started = yield* Effect.flatMap(SagaManager, (m) => m.start(quick(1), { owner: "v", seats: 1 })).pipe(Effect.provideContext(v1))
        yield* Effect.sleep("200 millis")
        return started
      }))
      // the new code only knows version 2
      const v2 = yield* Layer.build(Microservice.layerWith({ handlers: [], sagas: [quick(2)] }).pipe(Layer.provide(provided)))
      const done = yield* Effect.flatMap(SagaManager, (m) => m.await(id, "15 seconds")).pipe(Effect.provideContext(v2))
      assert.strictEqual(done.status, "errored")
      assert.include(done.error!, "not registered")
    })), 30_000)
})
