/**
 * Fault 5: `ScheduleExam` sagas (exam coordinates, rooms books) with a participant SIGKILLed at each
 * step boundary: the coordinator right after a saga started, rooms once `BookRoom` was sent, the
 * coordinator once the reply arrived, rooms in the commit phase, the coordinator when its local
 * transaction moved. Some sagas cannot get a room (capacity) and must compensate. Afterwards, from the
 * stores: every saga ended exactly once, no exam is booked twice, every finished saga's exam is
 * scheduled in the room that holds its booking, and no failed saga holds a booking.
 */
import { assert, it } from "@effect/vitest"
import { Clock, Duration, Effect, Schedule } from "effect"
import { NIL } from "../../src/internal/Ids.ts"
import * as Cluster from "./support/Cluster.ts"
import * as Fleet from "./support/Fleet.ts"
import { describeClusterFault } from "./support/Gate.ts"
import * as Ledger from "./support/Ledger.ts"
import * as Load from "./support/Load.ts"
import * as PrivatePg from "./support/PrivatePg.ts"
import * as Report from "./support/Report.ts"

const perBoundary = Report.scale(1, 8)

/** Who dies, and the saga event after which. */
const boundaries: ReadonlyArray<readonly ["exam" | "rooms", string, string]> = [
  ["exam", "StepStarted", "the coordinator, once a saga started its first step"],
  ["rooms", "CommandSent", "rooms, once BookRoom was sent"],
  ["exam", "ReplyReceived", "the coordinator, once the reply arrived"],
  ["rooms", "PhaseEntered", "rooms, once the commit phase began"],
  ["exam", "LocalTransactionMoved", "the coordinator, once its local transaction moved"]
]

describeClusterFault("fault 5: saga participants SIGKILLed at step boundaries", () => {
  it.live(`${boundaries.length} step boundaries × ${perBoundary} sagas, a participant SIGKILLed at each: every saga ends once, no double booking`, () =>
    Effect.scoped(Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      yield* PrivatePg.up
      yield* Cluster.up
      const run = Fleet.runId()
      const examSchema = `faults_saga_exam_${run}`
      const roomsSchema = `faults_saga_rooms_${run}`
      const examDb = yield* PrivatePg.pool("exam_db")
      const roomsDb = yield* PrivatePg.pool("rooms_db")
      const ports = Fleet.ports(5)
      // the service names are the fixed ones: the saga's commands and replies use them
      const exam = yield* Fleet.service({ name: "exam", config: "config.yml", port: ports.exam, database: "exam_db", schema: examSchema, serviceName: "exam", brokers: Cluster.brokers })
      const rooms = yield* Fleet.service({ name: "rooms", config: "examples/rooms/config.yml", port: ports.rooms, database: "rooms_db", schema: roomsSchema, serviceName: "rooms", brokers: Cluster.brokers })
      yield* Effect.all([exam.start(), rooms.start()], { concurrency: 2 })
      const rnd = Ledger.random(Number(process.env["MINOS_FAULTS_SEED"] ?? 5))
      const total = boundaries.length * perBoundary
      // rooms for about two thirds of the seats asked for: some sagas must fail and compensate
      const seats = Array.from({ length: total }, () => rnd.int(1, 6))
      const capacity = Math.ceil((seats.reduce((a, b) => a + b, 0) * 2) / 3 / 3)
      for (const i of [1, 2, 3]) {
        const r = yield* Load.request("POST", `${rooms.url}/rooms`, { name: `room-${i}-${run}`, capacity })
        assert.strictEqual(r.status, 201, r.text)
      }
      const exams: Array<string> = []
      for (let i = 0; i < total; i++) {
        const r = yield* Load.request("POST", `${exam.url}/exams`, { title: `saga ${i}`, subject: `saga-${run}`, durationMinutes: 60 })
        assert.strictEqual(r.status, 201, r.text)
        exams.push((r.json as { uuid: string }).uuid)
      }

      const sagaEvents = (ids: ReadonlyArray<string>, type: string) =>
        PrivatePg.query<{ n: string }>(examDb, `SELECT count(*) AS n FROM "${examSchema}".minos_events WHERE aggregate = 'SagaExecution' AND type = $1 AND aggregate_id::text = ANY($2)`, [type, ids]).pipe(
          Effect.map((rows) => Number(rows[0]!.n))
        )
      const sagas: Array<{ readonly saga: string; readonly exam: string }> = []
      let kills = 0
      let missed = 0
      for (const [b, [who, marker]] of boundaries.entries()) {
        const batch: Array<string> = []
        for (let j = 0; j < perBoundary; j++) {
          const i = b * perBoundary + j
          const r = yield* Load.request("POST", `${exam.url}/exams/${exams[i]}/schedule`, { seats: seats[i] })
          assert.strictEqual(r.status, 202, r.text)
          const saga = (r.json as { sagaUuid: string }).sagaUuid
          batch.push(saga)
          sagas.push({ saga, exam: exams[i]! })
        }
        // the boundary: the first saga of the batch past `marker`
        const reached = yield* sagaEvents(batch, marker).pipe(
          Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (n) => n > 0 }),
          Effect.timeoutOption("30 seconds")
        )
        if (reached._tag === "None") missed++
        const victim = who === "exam" ? exam : rooms
        yield* victim.stop("SIGKILL")
        kills++
        yield* victim.start()
      }

      // every saga ends, bounded
      const ids = sagas.map((s) => s.saga)
      yield* sagaEvents(ids, "Ended").pipe(
        Effect.repeat({ schedule: Schedule.spaced("500 millis"), until: (n) => n >= ids.length }),
        Effect.timeoutOption(Duration.seconds(Report.scale(150, 300)))
      )
      // a little longer: an execution ending twice would show now
      yield* Effect.sleep("2 seconds")
      const ends = yield* PrivatePg.query<{ id: string; n: string; status: string | null }>(examDb,
        `SELECT aggregate_id::text AS id, count(*) FILTER (WHERE type = 'Ended') AS n, max(data->>'status') FILTER (WHERE type = 'Ended') AS status
         FROM "${examSchema}".minos_events WHERE aggregate = 'SagaExecution' AND aggregate_id::text = ANY($1) GROUP BY 1`, [ids])
      const endedOnce = new Map(ends.filter((e) => Number(e.n) === 1).map((e) => [e.id, e.status]))
      const notEndedOnce = ids.filter((id) => !endedOnce.has(id)).length
      const statuses: Record<string, number> = {}
      for (const s of endedOnce.values()) statuses[s ?? "?"] = (statuses[s ?? "?"] ?? 0) + 1

      // bookings and exams, from the snapshots
      const roomDocs = yield* PrivatePg.query<{ id: string; document: { bookings?: ReadonlyArray<{ examUuid: string; seats: number }>; capacity?: number } }>(roomsDb,
        `SELECT aggregate_id::text AS id, document FROM "${roomsSchema}".minos_snapshots WHERE transaction_id = $1 AND aggregate = 'Room'`, [NIL])
      const bookedIn = new Map<string, Array<string>>()
      let overbooked = 0
      for (const r of roomDocs) {
        const bookings = r.document.bookings ?? []
        if (bookings.reduce((n, b) => n + b.seats, 0) > (r.document.capacity ?? 0)) overbooked++
        for (const b of bookings) bookedIn.set(b.examUuid, [...(bookedIn.get(b.examUuid) ?? []), r.id])
      }
      const doubleBookings = [...bookedIn.values()].filter((rs) => rs.length > 1).length
      const examDocs = new Map((yield* PrivatePg.query<{ id: string; document: { status?: string; roomUuid?: string } }>(examDb,
        `SELECT aggregate_id::text AS id, document FROM "${examSchema}".minos_snapshots WHERE transaction_id = $1 AND aggregate = 'Exam'`, [NIL])).map((e) => [e.id, e.document]))
      let inconsistent = 0
      for (const s of sagas) {
        const status = endedOnce.get(s.saga)
        const doc = examDocs.get(s.exam)
        const rooms = bookedIn.get(s.exam) ?? []
        const ok = status === "finished"
          ? doc?.status === "scheduled" && rooms.length === 1 && rooms[0] === doc.roomUuid
          : doc?.status === "draft" && rooms.length === 0
        if (!ok) inconsistent++
      }
      const alive = (yield* exam.running) && (yield* rooms.running)
      yield* Report.write("5-saga-crash", {
        fault: "5. Saga participants SIGKILLed at step boundaries",
        load: `${ids.length} ScheduleExam sagas across exam and rooms on the Kafka cluster; ${kills} SIGKILLs (${boundaries.map((b) => b[2]).join("; ")})`,
        zero: { sagasNotEndedOnce: notEndedOnce, doubleBookings, overbookedRooms: overbooked, examAndRoomDisagree: inconsistent, serviceExited: alive ? 0 : 1 },
        counted: { ...statuses, boundariesNotSeen: missed, restarts: kills },
        seconds: Math.round(((yield* Clock.currentTimeMillis) - started) / 1000)
      })
      assert.strictEqual(notEndedOnce, 0, JSON.stringify(ends.filter((e) => Number(e.n) !== 1)))
      assert.strictEqual(doubleBookings, 0)
      assert.strictEqual(overbooked, 0)
      assert.strictEqual(inconsistent, 0)
      assert.isTrue(alive)
      assert.isAbove(statuses["finished"] ?? 0, 0, "no saga finished")
      yield* PrivatePg.dropSchema(examDb, examSchema)
      yield* PrivatePg.dropSchema(roomsDb, roomsSchema)
    })), 900_000)
})
