/**
 * The example services end to end as separate processes on PostgreSQL + Kafka: the exam REST
 * contract, its events on Kafka (read with a plain @platformatic/kafka consumer), the read model catching up,
 * `BookRoom` over Kafka getting its reply, the `ScheduleExam` saga across both services, and a
 * SIGTERM in the middle of a burst of POSTs losing nothing that was acknowledged.
 */
import { assert, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as KafkaBroker from "../../src/kafka/KafkaBroker.ts"
import * as Replies from "../../src/messaging/Replies.ts"
import { RequestClient } from "../../src/messaging/RequestClient.ts"
import * as RequestClientModule from "../../src/messaging/RequestClient.ts"
import * as MinosConfig from "../../src/config/MinosConfig.ts"
import { freePort, http, start } from "../support/Process.ts"
import { readTopic } from "../support/Kafka.ts"
import { describeKafka, describePostgres, kafkaBrokers, settings } from "../support/Services.ts"

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`

const waitUntil = <A>(what: string, probe: Effect.Effect<A>, ok: (a: A) => boolean, timeoutMs = 30_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const a = yield* probe
      if (ok(a)) return a
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}; last: ${JSON.stringify(a)}`))
      yield* Effect.sleep("100 millis")
    }
  })

/** Reads `topic` from the beginning with a plain consumer until `match` holds for a message. */
const kafkaMessage = (topic: string, match: (value: any) => boolean) =>
  Effect.gen(function*() {
    const parse = (value: string): unknown => {
      try {
        return JSON.parse(value)
      } catch {
        return undefined
      }
    }
    const records = yield* readTopic(kafkaBrokers, topic, (rs) => rs.some((r) => match(parse(r.value))), "45 seconds")
    const found = records.find((r) => match(parse(r.value)))
    if (found === undefined) return yield* Effect.die(new Error(`no matching message on ${topic}`))
    return { key: found.key, value: parse(found.value) as any, headers: found.headers }
  })

describePostgres("examples on PostgreSQL", () => {
  describeKafka("and Kafka, as processes", () => {
    const services = (examPort: number, roomsPort: number) => ({
      common: { MINOS_STORAGE_POSTGRES_HOST: "127.0.0.1", MINOS_BROKER_HOST: "127.0.0.1" },
      exam: {
        MINOS_REST_PORT: String(examPort),
        MINOS_STORAGE_POSTGRES_SCHEMA: `e2e_exam_${run}`,
        MINOS_SAGA_STORAGE_PATH: join(mkdtempSync(join(tmpdir(), "e2e-exam-saga-")), "sagas")
      },
      rooms: {
        MINOS_REST_PORT: String(roomsPort),
        MINOS_STORAGE_POSTGRES_SCHEMA: `e2e_rooms_${run}`,
        MINOS_SAGA_STORAGE_PATH: join(mkdtempSync(join(tmpdir(), "e2e-rooms-saga-")), "sagas")
      }
    })

    it.live("exam: REST contract, events on Kafka, read model, BookRoom reply, scheduling saga", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = services(yield* freePort, yield* freePort)
        const exam = yield* start(["config.yml", "--services"], { ...env.common, ...env.exam })
        const rooms = yield* start(["examples/rooms/config.yml", "--services"], { ...env.common, ...env.rooms })
        const subject = `algebra-${run}`

        // create, read, invalid input
        const created = yield* http("POST", `${exam.url}/exams`, { title: "Linear algebra", subject, durationMinutes: 90 })
        assert.strictEqual(created.status, 201, JSON.stringify(created.body))
        const { uuid } = created.body as { uuid: string; version: number }
        assert.strictEqual(created.body.version, 1)
        const got = yield* http("GET", `${exam.url}/exams/${uuid}`)
        assert.strictEqual(got.status, 200)
        assert.strictEqual(got.body.title, "Linear algebra")
        assert.strictEqual(got.body.status, "draft")
        assert.isString(got.body.createdAt)
        const invalid = yield* http("POST", `${exam.url}/exams`, { title: "", subject, durationMinutes: 90 })
        assert.strictEqual(invalid.status, 400)
        assert.include(JSON.stringify(invalid.body), "title")
        assert.strictEqual((yield* http("GET", `${exam.url}/exams/${crypto.randomUUID()}`)).status, 404)

        // update with and without a stale version
        const patched = yield* http("PATCH", `${exam.url}/exams/${uuid}`, { durationMinutes: 120, expectedVersion: 1 })
        assert.strictEqual(patched.status, 200)
        assert.strictEqual(patched.body.version, 2)
        assert.strictEqual((yield* http("PATCH", `${exam.url}/exams/${uuid}`, { title: "x", expectedVersion: 1 })).status, 409)

        // the event on Kafka, keyed by the aggregate id
        const event = yield* kafkaMessage("ExamCreated", (v) => v?.payload?.content?.uuid === uuid)
        assert.strictEqual(event.key, uuid)
        assert.strictEqual(event.value.version, 1)
        assert.strictEqual(event.value.topic, "ExamCreated")
        assert.strictEqual(event.headers["message-id"], event.value.identifier)
        const fieldEvent = yield* kafkaMessage("ExamUpdated.durationMinutes", (v) => v?.payload?.content?.uuid === uuid)
        assert.deepStrictEqual(fieldEvent.value.payload.content.data.diff, [{ name: "durationMinutes", value: 120 }])

        // the query side catches up
        const listed = yield* http("GET", `${exam.url}/exams?subject=${subject}&waitFor=${uuid}@2`)
        assert.strictEqual(listed.status, 200)
        assert.deepStrictEqual(listed.body.items.map((i: { uuid: string; durationMinutes: number }) => [i.uuid, i.durationMinutes]), [[uuid, 120]])

        // BookRoom over Kafka, from exam's side, gets its reply
        const room = yield* http("POST", `${rooms.url}/rooms`, { name: `A-${run}`, capacity: 30 })
        assert.strictEqual(room.status, 201)
        const reply = yield* Effect.gen(function*() {
          const client = yield* RequestClient
          return yield* client.send("BookRoom", { examUuid: crypto.randomUUID(), seats: 2 }, { timeout: "30 seconds" })
        }).pipe(Effect.provide(RequestClientModule.layer({ service: "exam" }).pipe(
          Layer.provide(Layer.mergeAll(KafkaBroker.layer({ brokers: kafkaBrokers, clientId: `e2e-${run}` }), Replies.layer))
        )))
        assert.strictEqual(reply.status, 200)
        assert.isString((reply.content as { roomUuid: string }).roomUuid)

        // the saga: a room is booked and the exam scheduled, together
        const scheduled = yield* http("POST", `${exam.url}/exams/${uuid}/schedule`, { seats: 10 })
        assert.strictEqual(scheduled.status, 202, JSON.stringify(scheduled.body))
        const saga = yield* waitUntil("the saga", http("GET", `${exam.url}/sagas/${scheduled.body.sagaUuid}`), (r) => ["finished", "compensated", "errored"].includes(r.body?.status))
        assert.strictEqual(saga.body.status, "finished", JSON.stringify(saga.body))
        const after = yield* http("GET", `${exam.url}/exams/${uuid}`)
        assert.strictEqual(after.body.status, "scheduled")
        assert.strictEqual(after.body.seats, 10)
        const booked = yield* http("GET", `${rooms.url}/rooms/${after.body.roomUuid}`)
        assert.isTrue(booked.body.bookings.some((b: { examUuid: string }) => b.examUuid === uuid))

        // no room with enough seats: the saga fails, nothing booked, the exam stays a draft
        const other = (yield* http("POST", `${exam.url}/exams`, { title: "Huge", subject, durationMinutes: 60 })).body.uuid as string
        const tooMany = yield* http("POST", `${exam.url}/exams/${other}/schedule`, { seats: 5000 })
        const failed = yield* waitUntil("the failed saga", http("GET", `${exam.url}/sagas/${tooMany.body.sagaUuid}`), (r) => ["finished", "compensated", "errored"].includes(r.body?.status))
        assert.strictEqual(failed.body.status, "compensated")
        assert.include(failed.body.error, "NoRoomAvailable")
        assert.strictEqual((yield* http("GET", `${exam.url}/exams/${other}`)).body.status, "draft")

        // delete: then 410
        assert.strictEqual((yield* http("DELETE", `${exam.url}/exams/${other}`)).status, 200)
        assert.strictEqual((yield* http("GET", `${exam.url}/exams/${other}`)).status, 410)
      })), 240_000)

    it.live("saga crash-resume: exam killed while waiting for BookRoom, rooms killed mid-flight; the saga finishes once, one booking", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = services(yield* freePort, yield* freePort)
        const examEnv = { ...env.common, ...env.exam, MINOS_STORAGE_POSTGRES_SCHEMA: `e2e_crash_exam_${run}` }
        const roomsEnv = { ...env.common, ...env.rooms, MINOS_STORAGE_POSTGRES_SCHEMA: `e2e_crash_rooms_${run}` }
        // rooms is up only to create a room, then down: BookRoom waits on Kafka
        const rooms1 = yield* start(["examples/rooms/config.yml", "--services"], roomsEnv)
        const room = (yield* http("POST", `${rooms1.url}/rooms`, { name: `crash-${run}`, capacity: 40 })).body.uuid as string
        yield* rooms1.stop("SIGKILL")
        const exam1 = yield* start(["config.yml", "--services"], examEnv)
        const uuid = (yield* http("POST", `${exam1.url}/exams`, { title: "Crash", subject: `crash-${run}`, durationMinutes: 30 })).body.uuid as string
        const sagaUuid = (yield* http("POST", `${exam1.url}/exams/${uuid}/schedule`, { seats: 12 })).body.sagaUuid as string
        yield* waitUntil("the saga paused on BookRoom", http("GET", `${exam1.url}/sagas/${sagaUuid}`), (r) => r.body?.status === "paused")
        // exam dies after sending BookRoom and before its reply
        yield* exam1.stop("SIGKILL")
        const rooms2 = yield* start(["examples/rooms/config.yml", "--services"], roomsEnv)
        yield* waitUntil("the booking", http("GET", `${rooms2.url}/rooms/${room}`), (r) => r.body?.bookings?.length >= 0 && r.status === 200)
        const exam2 = yield* start(["config.yml", "--services"], examEnv)
        const done = yield* waitUntil("the saga to end", http("GET", `${exam2.url}/sagas/${sagaUuid}`), (r) => ["finished", "compensated", "errored"].includes(r.body?.status), 90_000)
        assert.strictEqual(done.body.status, "finished", JSON.stringify(done.body))
        assert.strictEqual((yield* http("GET", `${exam2.url}/exams/${uuid}`)).body.status, "scheduled")
        const booked = yield* http("GET", `${rooms2.url}/rooms/${room}`)
        assert.deepStrictEqual(booked.body.bookings, [{ examUuid: uuid, seats: 12 }])

        // rooms killed right after the command went out: redelivered after restart, handled once
        const second = (yield* http("POST", `${exam2.url}/exams`, { title: "Crash 2", subject: `crash-${run}`, durationMinutes: 30 })).body.uuid as string
        const saga2 = (yield* http("POST", `${exam2.url}/exams/${second}/schedule`, { seats: 5 })).body.sagaUuid as string
        yield* rooms2.stop("SIGKILL")
        const rooms3 = yield* start(["examples/rooms/config.yml", "--services"], roomsEnv)
        const done2 = yield* waitUntil("the second saga to end", http("GET", `${exam2.url}/sagas/${saga2}`), (r) => ["finished", "compensated", "errored"].includes(r.body?.status), 90_000)
        assert.strictEqual(done2.body.status, "finished", JSON.stringify(done2.body))
        const after = yield* http("GET", `${rooms3.url}/rooms/${room}`)
        assert.strictEqual(after.body.bookings.filter((b: { examUuid: string }) => b.examUuid === second).length, 1)
        assert.strictEqual(after.body.free, 40 - 12 - 5)
      })), 240_000)

    it.live("SIGTERM during a burst of POSTs: every acknowledged exam is there after the restart", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = services(yield* freePort, yield* freePort)
        const envExam = { ...env.common, ...env.exam, MINOS_STORAGE_POSTGRES_SCHEMA: `e2e_sigterm_${run}` }
        const first = yield* start(["config.yml", "--services"], envExam)
        const acknowledged: Array<string> = []
        const burst = Effect.forEach(Array.from({ length: 300 }, (_, i) => i), (i) =>
          http("POST", `${first.url}/exams`, { title: `t${i}`, subject: `burst-${run}`, durationMinutes: 30 }).pipe(
            Effect.tap((r) => Effect.sync(() => {
              if (r.status >= 200 && r.status < 300) acknowledged.push(r.body.uuid)
            })),
            Effect.catchDefect(() => Effect.void)
          ), { concurrency: 16, discard: true })
        const fiber = yield* Effect.forkChild(burst)
        yield* waitUntil("some acknowledged writes", Effect.sync(() => acknowledged.length), (n) => n >= 40)
        const code = yield* first.stop("SIGTERM")
        assert.strictEqual(code, 0, first.output())
        yield* Fiber.await(fiber)
        const second = yield* start(["config.yml", "--services"], envExam)
        for (const uuid of acknowledged) {
          const r = yield* http("GET", `${second.url}/exams/${uuid}`)
          assert.strictEqual(r.status, 200, `exam ${uuid} acknowledged before SIGTERM is missing`)
        }
        assert.isAtLeast(acknowledged.length, 40)
      })), 180_000)
  })
})

