/**
 * Fault 6: seeded fuzzed HTTP requests at the exam and rooms services, every one over a raw socket
 * (paths verbatim, framing as generated). No request may get a 5xx, no error body may carry a stack
 * trace, SQL or host:port, no rejected request may write a row, and the services keep running.
 */
import { assert, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import * as Checker from "./support/Checker.ts"
import * as Fleet from "./support/Fleet.ts"
import * as Fuzz from "./support/Fuzz.ts"
import * as Cluster from "./support/Cluster.ts"
import { describeClusterFault } from "./support/Gate.ts"
import * as Ledger from "./support/Ledger.ts"
import * as Load from "./support/Load.ts"
import * as PrivatePg from "./support/PrivatePg.ts"
import * as Report from "./support/Report.ts"

const seed = Number(process.env["MINOS_FAULTS_SEED"] ?? 6)
const count = Number(process.env["MINOS_FAULTS_FUZZ_COUNT"] ?? Report.scale(500, 5_000))

const ref = (text: string): { uuid: string; version: number } | undefined => {
  try {
    const r = JSON.parse(text) as { uuid?: unknown; version?: unknown }
    return typeof r.uuid === "string" && typeof r.version === "number" ? { uuid: r.uuid, version: r.version } : undefined
  } catch {
    return undefined
  }
}

const decodeURIComponentSafe = (s: string) => {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

describeClusterFault("fault 6: fuzzed HTTP requests", () => {
  it.live(`${count} seeded fuzzed requests: no 5xx, no internals, no rows from rejected requests`, () =>
    Effect.scoped(Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      yield* PrivatePg.up
      yield* Cluster.up
      const run = Fleet.runId()
      const examSchema = `faults_fuzz_exam_${run}`
      const roomsSchema = `faults_fuzz_rooms_${run}`
      const examDb = yield* PrivatePg.pool("exam_db")
      const roomsDb = yield* PrivatePg.pool("rooms_db")
      const ports = Fleet.ports(6)
      const exam = yield* Fleet.service({ name: "exam", config: "config.yml", port: ports.exam, database: "exam_db", schema: examSchema, serviceName: `exam_fuzz_${run}`, brokers: Cluster.brokers })
      // rooms serves REST only: its BookRoom consumer would answer other suites' sagas on a shared broker
      const rooms = yield* Fleet.service({
        name: "rooms",
        config: "examples/rooms/config.yml",
        port: ports.rooms,
        database: "rooms_db",
        schema: roomsSchema,
        serviceName: `rooms_fuzz_${run}`,
        brokers: Cluster.brokers,
        env: { MINOS_COMPONENTS_CONSUMER: "false" }
      })
      yield* Effect.all([exam.start(), rooms.start()], { concurrency: 2 })

      // a few real aggregates to aim updates and deletes at
      const ledger = Ledger.make()
      const seedAggregates = (url: string, path: string, body: unknown) =>
        Effect.forEach(Array.from({ length: 5 }, (_, i) => i), () =>
          Effect.gen(function*() {
            const r = yield* Load.request("POST", `${url}${path}`, body)
            const acked = r.status === 201 ? ref(r.text) : undefined
            if (acked !== undefined) yield* ledger.ack({ op: "create", ...acked })
            return acked?.uuid
          })).pipe(Effect.map((xs) => xs.filter((x): x is string => x !== undefined)))
      const examUuids = yield* seedAggregates(exam.url, "/exams", { title: "seed", subject: "fuzz", durationMinutes: 30 })
      const roomUuids = yield* seedAggregates(rooms.url, "/rooms", { name: "seed", capacity: 10 })
      assert.strictEqual(examUuids.length + roomUuids.length, 10)

      const rnd = Ledger.random(seed)
      const cases = Array.from({ length: count }, () => {
        const roll = rnd.next()
        const toRooms = roll < 0.3
        const c = roll > 0.95 ? Fuzz.system(rnd) : toRooms ? Fuzz.next(rnd, roomUuids, "/rooms") : Fuzz.next(rnd, examUuids, "/exams")
        return { c, port: toRooms ? ports.rooms : ports.exam }
      })
      const byKind: Record<string, number> = {}
      const sentTitles = new Map<string, Array<number>>()
      yield* Effect.forEach(cases, ({ c, port }) =>
        Effect.gen(function*() {
          byKind[c.kind] = (byKind[c.kind] ?? 0) + 1
          const bytes = Fuzz.bytesOf(c)
          const answer = yield* Fuzz.sendRaw(port, bytes, { halfClose: c.raw !== undefined })
          // what was sent, decoded both ways, so an echo of it is not taken for a leak
          const sent = bytes.length > 200_000 ? undefined : `${bytes.toString("latin1")}\n${bytes.toString("utf8")}\n${decodeURIComponentSafe(c.path ?? "")}`
          yield* ledger.record(`${c.kind}: ${c.method ?? "raw"} ${(c.path ?? "").slice(0, 80)}`, answer.status, answer.body, sent)
          const title = /"title":"(fuzz \d+)"/.exec(bytes.length > 200_000 ? "" : bytes.toString("utf8"))?.[1]
          if (title !== undefined) sentTitles.set(title, [...(sentTitles.get(title) ?? []), answer.status])
          if (answer.status >= 200 && answer.status < 300 && c.method !== "GET") {
            const acked = ref(answer.body)
            if (acked !== undefined) yield* ledger.ack({ op: c.method === "DELETE" ? "delete" : c.method === "POST" ? "create" : "update", ...acked })
          }
        }), { concurrency: 4, discard: true })

      // still serving, and nothing restarted
      const after = yield* Load.request("POST", `${exam.url}/exams`, { title: "after", subject: "fuzz", durationMinutes: 30 })
      if (after.status === 201) yield* ledger.ack({ op: "create", ...ref(after.text)! })
      const alive = (yield* exam.running) && (yield* rooms.running)

      // rows: every event in the stores belongs to an acknowledged write
      const acked = new Set(ledger.acks.map((a) => `${a.uuid}@${a.version}`))
      const examStores = yield* Checker.read(examDb, examSchema)
      const roomsStores = yield* Checker.read(roomsDb, roomsSchema)
      const events = [...examStores.events, ...roomsStores.events]
      // an event no acknowledged write accounts for: whose request was it? (each valid-looking body has
      // a title of its own) A rejected one must never have written it; one whose answer was lost
      // (a broken connection) may have
      const unaccounted = events.filter((e) => !acked.has(`${e.aggregate_id}@${e.version}`))
      const outcomeOf = (e: (typeof events)[number]): "rejected" | "unknown" => {
        const title = e.data.fields?.["title"]
        const statuses = typeof title === "string" ? sentTitles.get(title) ?? [] : []
        return statuses.length > 0 && statuses.every((s) => s >= 300) ? "rejected" : "unknown"
      }
      const unacknowledgedRows = unaccounted.filter((e) => outcomeOf(e) === "rejected").length
      const unknownOutcomeRows = unaccounted.length - unacknowledgedRows
      const http = Ledger.summary(ledger)
      // a well-formed request always gets an answer; garbage may just be closed
      const unanswered = ledger.answers.filter((a) => a.status === 0 && !a.op.startsWith("bad framing"))
      const statuses = Object.entries(http.byStatus).sort().map(([s, n]) => `${s}:${n}`).join(" ")
      yield* Report.write("6-fuzz", {
        fault: "6. Fuzzed HTTP requests",
        load: `${count} seeded requests over raw sockets (seed ${seed}) at exam and rooms`,
        zero: {
          server5xx: http.server5xx,
          errorBodyLeaks: http.leaks,
          rowsWrittenByRejected: unacknowledgedRows,
          serviceExited: alive ? 0 : 1,
          wellFormedUnanswered: unanswered.length
        },
        counted: {
          statuses,
          acceptedByFuzz: ledger.acks.length - 11,
          closedWithoutAnswer: http.noAnswer,
          rowsOfLostAnswers: unknownOutcomeRows,
          kinds: Object.keys(byKind).length
        },
        seconds: Math.round(((yield* Clock.currentTimeMillis) - started) / 1000)
      })
      const fiveXX = ledger.answers.filter((a) => a.status >= 500).slice(0, 5).map((a) => `${a.op} → ${a.status} ${a.body.slice(0, 200)}`)
      assert.strictEqual(http.server5xx, 0, fiveXX.join("\n"))
      assert.strictEqual(http.leaks, 0, http.leakExamples.join("\n"))
      assert.strictEqual(unacknowledgedRows, 0)
      assert.strictEqual(unanswered.length, 0, unanswered.slice(0, 5).map((a) => `${a.op}: ${a.body.slice(0, 120)}`).join("\n"))
      assert.isTrue(alive, "a service exited under fuzzing")
      assert.strictEqual(after.status, 201, after.text)
      yield* PrivatePg.dropSchema(examDb, examSchema)
      yield* PrivatePg.dropSchema(roomsDb, roomsSchema)
    })), 600_000)
})
