/**
 * The example services on the embedded default in one process: LMDB stores and the in-process
 * broker shared by exam and rooms. The same scenario as the process test on PostgreSQL + Kafka.
 */
import { assert, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Exam, Exams } from "../../examples/exam/Exam.ts"
import { ExamViews } from "../../examples/exam/ExamView.ts"
import { handlers as examHandlers } from "../../examples/exam/Handlers.ts"
import { ScheduleExam } from "../../examples/exam/ScheduleExam.ts"
import { handlers as roomHandlers } from "../../examples/rooms/Handlers.ts"
import { Room, Rooms } from "../../examples/rooms/Room.ts"
import * as MemoryBroker from "../../src/memory/MemoryBroker.ts"
import * as Replies from "../../src/messaging/Replies.ts"
import * as RequestClient from "../../src/messaging/RequestClient.ts"
import * as MinosConfig from "../../src/config/MinosConfig.ts"
import * as Repository from "../../src/command/Repository.ts"
import { HttpAddress } from "../../src/http/HttpServer.ts"
import type * as Router from "../../src/router/Router.ts"
import * as Microservice from "../../src/runtime/Microservice.ts"
import * as Lmdb from "../../src/lmdb/Lmdb.ts"
import { http } from "../support/Process.ts"
import { settings } from "../support/Services.ts"

const temp = (p: string) => mkdtempSync(join(tmpdir(), p))

const service = <const Hs extends ReadonlyArray<Router.Handler>, S, E>(name: string, definition: Microservice.Definition<Hs, S, E>) =>
  Microservice.layerWith(definition).pipe(
    Layer.provideMerge(Layer.fresh(Microservice.layerRequestClient)),
    Layer.provideMerge(Layer.mergeAll(Lmdb.layer({ path: temp(`${name}-`) }), Layer.fresh(Replies.layer))),
    Layer.provideMerge(MinosConfig.layerSettings({
      ...settings({ name, rest: true, restPort: 0 }),
      saga: { storage: { backend: "lmdb", path: join(temp(`${name}-saga-`), "sagas.lmdb") } }
    }))
  )

const waitUntil = <A>(probe: Effect.Effect<A>, ok: (a: A) => boolean, timeoutMs = 20_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const a = yield* probe
      if (ok(a) || Date.now() > deadline) return a
      yield* Effect.sleep("50 millis")
    }
  })

it.live("exam + rooms on the embedded default: REST, read model, scheduling saga", () =>
  Effect.scoped(Effect.gen(function*() {
    const broker = yield* Layer.build(MemoryBroker.layer())
    const shared = Layer.succeedContext(broker)
    const scheduleExam = ScheduleExam
    const examCtx = yield* Layer.build(service("exam", { handlers: examHandlers, services: Repository.layer(Exams, Exam), projections: [ExamViews], sagas: [scheduleExam] }).pipe(Layer.provide(shared)))
    const roomsCtx = yield* Layer.build(service("rooms", { handlers: roomHandlers, services: Repository.layer(Rooms, Room) }).pipe(Layer.provide(shared)))
    const exam = Context.get(examCtx as unknown as Context.Context<HttpAddress>, HttpAddress).url
    const rooms = Context.get(roomsCtx as unknown as Context.Context<HttpAddress>, HttpAddress).url

    const created = yield* http("POST", `${exam}/exams`, { title: "Statistics", subject: "stats", durationMinutes: 60 })
    assert.strictEqual(created.status, 201)
    const uuid = created.body.uuid as string
    const listed = yield* http("GET", `${exam}/exams?subject=stats&waitFor=${uuid}@1`)
    assert.deepStrictEqual(listed.body.items.map((i: { uuid: string }) => i.uuid), [uuid])
    assert.strictEqual((yield* http("PATCH", `${exam}/exams/${uuid}`, { seats: 3, expectedVersion: 7 })).status, 409)

    assert.strictEqual((yield* http("POST", `${rooms}/rooms`, { name: "Hall", capacity: 50 })).status, 201)
    const started = yield* http("POST", `${exam}/exams/${uuid}/schedule`, { seats: 20 })
    assert.strictEqual(started.status, 202)
    const saga = yield* waitUntil(http("GET", `${exam}/sagas/${started.body.sagaUuid}`), (r) => ["finished", "compensated", "errored"].includes(r.body?.status))
    assert.strictEqual(saga.body.status, "finished", JSON.stringify(saga.body))
    const scheduled = yield* http("GET", `${exam}/exams/${uuid}`)
    assert.strictEqual(scheduled.body.status, "scheduled")
    // the saga's transaction committed the change: the read model's follower picks it up from the log
    const view = yield* http("GET", `${exam}/exams?subject=stats&waitFor=${uuid}@${scheduled.body.version}`)
    assert.deepStrictEqual(view.body.items.map((i: { status: string; version: number }) => [i.status, i.version]), [["scheduled", scheduled.body.version]])
    const room = yield* http("GET", `${rooms}/rooms/${scheduled.body.roomUuid}`)
    assert.deepStrictEqual(room.body.bookings, [{ examUuid: uuid, seats: 20 }])
    assert.strictEqual(room.body.free, 30)

    // not enough seats anywhere: errored, nothing booked, still a draft
    const other = (yield* http("POST", `${exam}/exams`, { title: "Big", subject: "stats", durationMinutes: 60 })).body.uuid as string
    const failing = yield* http("POST", `${exam}/exams/${other}/schedule`, { seats: 40 })
    const failed = yield* waitUntil(http("GET", `${exam}/sagas/${failing.body.sagaUuid}`), (r) => ["finished", "compensated", "errored"].includes(r.body?.status))
    assert.strictEqual(failed.body.status, "compensated")
    assert.strictEqual((yield* http("GET", `${exam}/exams/${other}`)).body.status, "draft")
    assert.strictEqual((yield* http("GET", `${rooms}/rooms/${scheduled.body.roomUuid}`)).body.free, 30)
  })), 60_000)
