/**
 * The example services in one process (in-process broker, LMDB): concurrent `ScheduleExam` sagas
 * racing for the same rooms (contention: steps and runs tried again on fresh state), management
 * (cancel, history, list filters), and the replay helper against changed definitions.
 */
import { assert, it } from "@effect/vitest"
import { Context, Effect, Layer, Schema } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Exam, Exams } from "../../examples/exam/Exam.ts"
import { handlers as examHandlers } from "../../examples/exam/Handlers.ts"
import { ScheduleExam } from "../../examples/exam/ScheduleExam.ts"
import { BookRoom } from "../../examples/rooms/Contracts.ts"
import { handlers as roomHandlers } from "../../examples/rooms/Handlers.ts"
import { free, Room, Rooms } from "../../examples/rooms/Room.ts"
import * as Entity from "../../src/domain/Entity.ts"
import * as MemoryBroker from "../../src/memory/MemoryBroker.ts"
import * as Replies from "../../src/messaging/Replies.ts"
import { RequestClient } from "../../src/messaging/RequestClient.ts"
import * as MinosConfig from "../../src/config/MinosConfig.ts"
import * as Repository from "../../src/command/Repository.ts"
import type * as Router from "../../src/router/Router.ts"
import * as Microservice from "../../src/runtime/Microservice.ts"
import * as Saga from "../../src/saga/Saga.ts"
import { SagaManager } from "../../src/saga/SagaManager.ts"
import * as Lmdb from "../../src/lmdb/Lmdb.ts"
import * as SagaReplay from "../../src/testing/SagaReplay.ts"
import { settings } from "../support/Services.ts"

const temp = (p: string) => mkdtempSync(join(tmpdir(), p))

const service = <const Hs extends ReadonlyArray<Router.Handler>, S, E>(name: string, definition: Microservice.Definition<Hs, S, E>) =>
  Microservice.layerWith(definition).pipe(
    Layer.provideMerge(Layer.fresh(Microservice.layerRequestClient)),
    Layer.provideMerge(Layer.mergeAll(Lmdb.layer({ path: temp(`${name}-`), noSync: true }), Layer.fresh(Replies.layer))),
    Layer.provideMerge(MinosConfig.layerSettings({ ...settings({ name }), saga: { storage: { backend: "lmdb", path: join(temp(`${name}-saga-`), "none") } } }))
  )

/** A saga that waits for a command nobody handles (to cancel it). */
const Stuck = Saga.make("Stuck", { version: 1, context: Schema.Struct({ examUuid: Schema.String }) })
  .remote("Nowhere", (c) => ({ topic: "NobodyHandlesThisStuck", content: { examUuid: c.examUuid } }))
  .onFailure((c) => ({ topic: "NobodyHandlesThisStuckEither", content: { examUuid: c.examUuid } }))
  .build

const setup = Effect.gen(function*() {
  const broker = yield* Layer.build(MemoryBroker.layer())
  const shared = Layer.succeedContext(broker)
  const examCtx = yield* Layer.build(service("exam", { handlers: examHandlers, services: Repository.layer(Exams, Exam), sagas: [ScheduleExam, Stuck] }).pipe(Layer.provide(shared)))
  const roomsCtx = yield* Layer.build(service("rooms", { handlers: roomHandlers, services: Repository.layer(Rooms, Room) }).pipe(Layer.provide(shared)))
  return { exams: Context.get(examCtx, Exams), manager: Context.get(examCtx, SagaManager), rooms: Context.get(roomsCtx, Rooms), client: Context.get(examCtx, RequestClient) }
})

it.live("concurrent ScheduleExam sagas racing for two rooms: every feasible one finishes, bookings match the exams", () =>
  Effect.scoped(Effect.gen(function*() {
    const { client, exams, manager, rooms } = yield* setup
    const a = (yield* rooms.create(Entity.create({ name: "A", capacity: 30, bookings: [] }))).id
    const b = (yield* rooms.create(Entity.create({ name: "B", capacity: 30, bookings: [] }))).id
    // the contract gives a typed reply (no cast): a booking outside the sagas
    const direct = yield* client.call(BookRoom, { examUuid: crypto.randomUUID(), seats: 1 }, { timeout: "10 seconds" })
    assert.include([a, b], direct.roomUuid)
    const n = 12
    const ids = yield* Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
      Effect.map(exams.create(Entity.create({ title: `Exam ${i}`, subject: "race", durationMinutes: 60, status: "draft" })), (h) => h.id))
    // 12 × 4 seats = 48 of the 59 free: all feasible
    const ends = yield* Effect.forEach(ids, (examUuid) => manager.run(ScheduleExam, { examUuid, seats: 4 }, { timeout: "60 seconds" }).pipe(Effect.result), { concurrency: "unbounded" })
    const finished = ends.filter((e) => e._tag === "Success").length
    console.log(`concurrent ScheduleExam (in-process): ${finished}/${n} finished`)
    for (const e of ends) if (e._tag === "Failure") console.log(`  not finished: ${e.failure.message}`)
    assert.isAtLeast(finished / n, 0.9)
    const all = yield* manager.list({ saga: "ScheduleExam" })
    assert.isTrue(all.some((x) => x.retries > 0), "the race made some step or run try again")
    // bookings consistent with the exam states: every scheduled exam has exactly one booking, in its room
    const roomA = yield* rooms.get(a)
    const roomB = yield* rooms.get(b)
    const bookings = [...Entity.fieldsOf(roomA.state)!.bookings.map((x) => ({ ...x, room: a })), ...Entity.fieldsOf(roomB.state)!.bookings.map((x) => ({ ...x, room: b }))]
    for (const examUuid of ids) {
      const exam = Entity.fieldsOf((yield* exams.get(examUuid)).state)!
      const mine = bookings.filter((x) => x.examUuid === examUuid)
      if (exam.status === "scheduled") {
        assert.strictEqual(mine.length, 1, `exam ${examUuid} is scheduled with ${mine.length} bookings`)
        assert.strictEqual(mine[0]!.room, exam.roomUuid)
      } else assert.strictEqual(mine.length, 0)
    }
    assert.strictEqual(free(roomA.state) + free(roomB.state), 60 - 1 - finished * 4)
  })), 120_000)

it.live("infeasible schedules end compensated with the participant's typed reason; a cancelled one compensates; history, filters, replay", () =>
  Effect.scoped(Effect.gen(function*() {
    const { exams, manager, rooms } = yield* setup
    yield* rooms.create(Entity.create({ name: "Small", capacity: 5, bookings: [] }))
    const exam = (yield* exams.create(Entity.create({ title: "Huge", subject: "x", durationMinutes: 60, status: "draft" }))).id
    const failed = yield* Effect.flip(manager.run(ScheduleExam, { examUuid: exam, seats: 50 }, { timeout: "30 seconds" }))
    const exec = yield* manager.get(failed.execution!)
    assert.strictEqual(exec.status, "compensated")
    assert.strictEqual(exec.failure?.reason, "StepFailed")
    assert.include(exec.error!, "NoRoomAvailable")
    assert.strictEqual(Entity.fieldsOf((yield* exams.get(exam)).state)!.status, "draft")

    // cancel: the pending step is abandoned, compensated, and the transaction rejected everywhere
    const stuck = yield* manager.start(Stuck, { examUuid: exam })
    assert.strictEqual((yield* manager.get(stuck)).status, "paused")
    const cancelled = yield* manager.cancel(stuck, { by: "test" })
    assert.strictEqual(cancelled.phase, "compensating")
    // the compensation is never acknowledged (nobody handles it): it waits, re-sent on its timeout
    const ended = yield* manager.get(stuck)
    assert.strictEqual(ended.failure?.reason, "Cancelled")
    assert.strictEqual(ended.waitingFor?.topic, "NobodyHandlesThisStuckEither")
    assert.strictEqual((yield* Effect.flip(manager.cancel(failed.execution!))).reason, "Refused")

    // history and filters
    const history = yield* manager.history(failed.execution!)
    assert.deepStrictEqual(history.slice(0, 3).map((h) => h.type), ["SagaStarted", "StepStarted", "CommandSent"])
    assert.strictEqual(history[history.length - 1]!.type, "Ended")
    assert.isTrue((yield* manager.list({ status: "compensated" })).some((x) => x.id === failed.execution))
    assert.isFalse((yield* manager.list({ status: "finished" })).some((x) => x.id === failed.execution))
    assert.isTrue((yield* manager.list({ saga: "Stuck" })).every((x) => x.saga === "Stuck"))
    assert.strictEqual((yield* manager.list({ startedBefore: 0 })).length, 0)

    // replay: the recorded execution still fits the current definition, not a changed one
    const recorded = yield* SagaReplay.record(manager, failed.execution!)
    SagaReplay.assertCompatible([ScheduleExam, Stuck], [recorded])
    const changed = Saga.make("ScheduleExam", { version: 1, context: ScheduleExam.context })
      .remote("BookRoom", BookRoom, (ctx) => ({ examUuid: ctx.examUuid, seats: ctx.seats + 1 }))
      .build
    const found = SagaReplay.divergences([changed], [recorded])
    assert.isAtLeast(found.length, 1)
    assert.include(found[0]!.message, "now sends")
    assert.include(SagaReplay.divergences([], [recorded])[0]!.message, "no definition")
  })), 120_000)
