/**
 * Fault 1: the exam service SIGKILLed at random points while clients create, update and delete
 * exams, and started again each time. Afterwards, from the stores: no acknowledged write is lost, no
 * stream has a version gap, every snapshot and read-model document equals its events, the outbox is
 * drained, every event reached Kafka (duplicates counted), and no error body leaks internals.
 */
import { assert, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Ref, Schedule } from "effect"
import * as Checker from "./support/Checker.ts"
import * as Fleet from "./support/Fleet.ts"
import * as Cluster from "./support/Cluster.ts"
import { describeClusterFault } from "./support/Gate.ts"
import * as Ledger from "./support/Ledger.ts"
import * as Load from "./support/Load.ts"
import * as PrivatePg from "./support/PrivatePg.ts"
import * as Report from "./support/Report.ts"

const seed = Number(process.env["MINOS_FAULTS_SEED"] ?? 1)
const kills = Report.scale(3, 10)

describeClusterFault("fault 1: SIGKILL of a service under writes", () => {
  it.live(`exam SIGKILLed ${kills} times during creates, updates and deletes: nothing acknowledged is lost`, () =>
    Effect.scoped(Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      yield* PrivatePg.up
      yield* Cluster.up
      const run = Fleet.runId()
      const schema = `faults_crash_${run}`
      const p = yield* PrivatePg.pool("exam_db")
      const exam = yield* Fleet.service({
        name: "exam",
        config: "config.yml",
        port: Fleet.ports(1).exam,
        database: "exam_db",
        schema,
        serviceName: `exam_crash_${run}`,
        brokers: Cluster.brokers
      })
      yield* exam.start()
      const ledger = Ledger.make()
      const rnd = Ledger.random(seed)
      const stop = yield* Ref.make(false)
      const load = yield* Effect.forkChild(Load.run(ledger, {
        url: exam.url,
        count: Report.scale(2_000, 8_000),
        durationMs: Report.scale(120_000, 420_000),
        concurrency: 4,
        paceMs: 50,
        seed,
        subject: `crash-${run}`,
        stop
      }))
      // each kill at a random point of the load, once the new process acknowledged 5-40 more writes
      // (a slow restart on a busy machine must not make the kills land on a service that did nothing)
      yield* Effect.forEach(Array.from({ length: kills }, (_, i) => i), () =>
        Effect.gen(function*() {
          const target = ledger.acks.length + rnd.int(5, 40)
          yield* Effect.sync(() => ledger.acks.length).pipe(
            Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (n) => n >= target }),
            Effect.timeoutOption("60 seconds")
          )
          yield* Effect.sleep(`${rnd.int(0, 500)} millis`)
          yield* exam.stop("SIGKILL")
          yield* exam.start()
        }), { discard: true })
      yield* Effect.sleep("1 second")
      yield* Ref.set(stop, true)
      yield* Fiber.join(load)

      const stores = yield* Checker.settle(p, schema)
      const inv = Checker.storeInvariants(stores, ledger.acks)
      const kafka = yield* Checker.kafkaInvariants(stores, "Exam", Cluster.brokers)
      const http = Ledger.summary(ledger)
      const seconds = Math.round(((yield* Clock.currentTimeMillis) - started) / 1000)
      yield* Report.write("1-sigkill", {
        fault: "1. SIGKILL of the exam service",
        load: `${http.requests} requests (creates/updates/deletes, 4 clients), ${kills} SIGKILLs + restarts`,
        zero: {
          acknowledgedLost: inv.acknowledgedLost,
          versionGaps: inv.versionGaps,
          snapshotMismatch: inv.snapshotMismatch,
          readModelMismatch: inv.readModelMismatch,
          outboxLeft: inv.outboxLeft,
          kafkaMissing: kafka.kafkaMissing,
          deadLetters: inv.deadLetters,
          errorBodyLeaks: http.leaks
        },
        counted: {
          acknowledged: inv.acknowledged,
          events: inv.events,
          aggregates: inv.aggregates,
          kafkaDuplicates: kafka.kafkaDuplicates,
          noAnswer: http.noAnswer,
          server5xx: http.server5xx,
          restarts: (yield* exam.starts) - 1
        },
        seconds
      })
      assert.isAbove(inv.acknowledged, 50, "the load acknowledged too little to mean anything")
      assert.strictEqual(inv.acknowledgedLost, 0, `acknowledged writes lost: ${inv.lostExamples.join("; ")}`)
      assert.strictEqual(inv.versionGaps, 0)
      assert.strictEqual(inv.snapshotMismatch, 0)
      assert.strictEqual(inv.readModelMismatch, 0, inv.readModelExamples.join("\n"))
      assert.strictEqual(inv.outboxLeft, 0)
      assert.strictEqual(inv.deadLetters, 0)
      assert.strictEqual(kafka.kafkaMissing, 0)
      assert.strictEqual(http.leaks, 0, http.leakExamples.join("\n"))
      yield* PrivatePg.dropSchema(p, schema)
    })), 600_000)
})
