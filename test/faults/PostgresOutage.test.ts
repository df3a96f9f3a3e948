/**
 * Fault 3: the private PostgreSQL stopped (fast shutdown: sessions terminated, 57P01; new
 * connections refused or told "shutting down" / "starting up", 57P03) under load, and started again.
 * The service keeps running: during the outage writes answer 503 with a generic body, the health
 * endpoint says unavailable; afterwards it serves again and the stores hold every acknowledged
 * write, the read model and Kafka catch up.
 */
import { assert, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Option, Ref, Schedule } from "effect"
import * as Checker from "./support/Checker.ts"
import * as Fleet from "./support/Fleet.ts"
import * as Cluster from "./support/Cluster.ts"
import { describeClusterFault } from "./support/Gate.ts"
import * as Ledger from "./support/Ledger.ts"
import * as Load from "./support/Load.ts"
import * as PrivatePg from "./support/PrivatePg.ts"
import * as Report from "./support/Report.ts"

const seed = Number(process.env["MINOS_FAULTS_SEED"] ?? 3)
const outageSeconds = Report.scale(10, 20)

describeClusterFault("fault 3: PostgreSQL stopped under load", () => {
  it.live(`PostgreSQL down ${outageSeconds} s under writes: 503 only, the service recovers by itself, nothing acknowledged is lost`, () =>
    Effect.scoped(Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      yield* PrivatePg.up
      yield* Cluster.up
      // whatever happens below, the cluster is left running for the next fault
      yield* Effect.addFinalizer(() => Effect.ignore(PrivatePg.start))
      const run = Fleet.runId()
      const schema = `faults_pgdown_${run}`
      const p = yield* PrivatePg.pool("exam_db")
      const exam = yield* Fleet.service({ name: "exam", config: "config.yml", port: Fleet.ports(3).exam, database: "exam_db", schema, serviceName: `exam_pgdown_${run}`, brokers: Cluster.brokers })
      yield* exam.start()
      const ledger = Ledger.make()
      const stop = yield* Ref.make(false)
      const load = yield* Effect.forkChild(Load.run(ledger, {
        url: exam.url,
        count: Report.scale(3_000, 8_000),
        durationMs: Report.scale(120_000, 300_000),
        concurrency: 4,
        paceMs: 50,
        seed,
        subject: `pgdown-${run}`,
        stop
      }))
      yield* Effect.sleep("3 seconds")

      // the outage; the health endpoint is probed all along
      const health = Ledger.make()
      const down = yield* Ref.make(false)
      const probe = yield* Effect.forkChild(
        Effect.gen(function*() {
          const r = yield* Load.request("GET", `${exam.url}/system/health`, undefined, 5_000)
          if (yield* Ref.get(down)) yield* health.record("health", r.status, r.text)
        }).pipe(Effect.repeat(Schedule.spaced("500 millis")))
      )
      yield* PrivatePg.stop("fast")
      const from = yield* Clock.currentTimeMillis
      yield* Ref.set(down, true)
      yield* Effect.sleep(Duration.seconds(outageSeconds))
      yield* Ref.set(down, false)
      yield* PrivatePg.start
      const to = yield* Clock.currentTimeMillis
      yield* Fiber.interrupt(probe)

      // back: the first acknowledged write after the restart
      const recovered = yield* Effect.sync(() => ledger.acks.find((a) => a.at > to)).pipe(
        Effect.repeat({ schedule: Schedule.spaced("200 millis"), until: (a) => a !== undefined }),
        Effect.timeoutOption("60 seconds")
      )
      yield* Effect.sleep("3 seconds")
      yield* Ref.set(stop, true)
      yield* Fiber.join(load)
      const alive = yield* exam.running

      const stores = yield* Checker.settle(p, schema)
      const inv = Checker.storeInvariants(stores, ledger.acks)
      const kafka = yield* Checker.kafkaInvariants(stores, "Exam", Cluster.brokers)
      const http = Ledger.summary(ledger)
      const during = Ledger.summary(ledger, { from, to })
      const healthOk = health.answers.filter((a) => a.status === 200).length
      const recoverySeconds = Option.match(Option.flatten(Option.map(recovered, Option.fromUndefinedOr)), { onNone: () => -1, onSome: (a) => Math.round((a.at - to) / 100) / 10 })
      yield* Report.write("3-postgres-down", {
        fault: "3. PostgreSQL stopped under load",
        load: `${http.requests} requests (4 clients), PostgreSQL down ${outageSeconds} s (fast shutdown), then started`,
        zero: {
          acknowledgedLost: inv.acknowledgedLost,
          non503During: during.non503,
          non503Overall: http.non503,
          errorBodyLeaks: http.leaks,
          healthOkDuringOutage: healthOk,
          serviceExited: alive ? 0 : 1,
          versionGaps: inv.versionGaps,
          readModelMismatch: inv.readModelMismatch,
          outboxLeft: inv.outboxLeft,
          kafkaMissing: kafka.kafkaMissing
        },
        counted: {
          acknowledged: inv.acknowledged,
          requestsDuringOutage: during.requests,
          answered503During: during.byStatus["503"] ?? 0,
          recoverySeconds,
          kafkaDuplicates: kafka.kafkaDuplicates
        },
        seconds: Math.round(((yield* Clock.currentTimeMillis) - started) / 1000)
      })
      assert.isAbove(during.requests, 10, "too few requests during the outage")
      assert.strictEqual(during.non503, 0, during.non503Examples.join("\n"))
      assert.strictEqual(http.non503, 0, http.non503Examples.join("\n"))
      assert.strictEqual(http.leaks, 0, http.leakExamples.join("\n"))
      assert.strictEqual(healthOk, 0, "the health endpoint said ok while PostgreSQL was down")
      assert.isTrue(alive, "the service exited during the outage")
      assert.isAtLeast(recoverySeconds, 0, "no write succeeded within 60 s of the restart")
      assert.strictEqual(inv.acknowledgedLost, 0, inv.lostExamples.join("; "))
      assert.strictEqual(inv.versionGaps, 0)
      assert.strictEqual(inv.readModelMismatch, 0, inv.readModelExamples.join("\n"))
      assert.strictEqual(inv.outboxLeft, 0)
      assert.strictEqual(kafka.kafkaMissing, 0)
      yield* PrivatePg.dropSchema(p, schema)
    })), 600_000)
})
