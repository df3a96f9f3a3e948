/**
 * The shape the broker faults share: the exam service on the Kafka cluster under a bounded load of
 * creates, updates and deletes, a fault injected while it runs, then every invariant read from the
 * stores and the cluster's topics.
 */
import { Clock, Effect, Fiber, Ref, Schedule } from "effect"
import * as Checker from "./Checker.ts"
import * as Cluster from "./Cluster.ts"
import * as Fleet from "./Fleet.ts"
import * as Ledger from "./Ledger.ts"
import * as Load from "./Load.ts"
import * as PrivatePg from "./PrivatePg.ts"
import * as Report from "./Report.ts"

export interface Options {
  readonly fault: number
  readonly name: string
  /** The fault's line in the report. */
  readonly title: string
  readonly seed: number
  /** The fault, run while the load runs; returns what it did, for the report. */
  readonly inject: (exam: Fleet.Service) => Effect.Effect<string, Error>
}

export const run = (options: Options) =>
  Effect.scoped(Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    yield* PrivatePg.up
    yield* Cluster.up
    // whatever happens, the cluster is whole again for the next test
    yield* Effect.addFinalizer(() => Effect.ignore(Cluster.up))
    const run = Fleet.runId()
    const schema = `faults_${options.name}_${run}`
    const p = yield* PrivatePg.pool("exam_db")
    const exam = yield* Fleet.service({
      name: "exam",
      config: "config.yml",
      port: Fleet.ports(options.fault).exam,
      database: "exam_db",
      schema,
      serviceName: `exam_${options.name}_${run}`,
      brokers: Cluster.brokers
    })
    yield* exam.start()
    const ledger = Ledger.make()
    const stop = yield* Ref.make(false)
    const load = yield* Effect.forkChild(Load.run(ledger, {
      url: exam.url,
      count: Report.scale(3_000, 10_000),
      durationMs: Report.scale(150_000, 400_000),
      concurrency: 4,
      paceMs: 50,
      seed: options.seed,
      subject: `${options.name}-${run}`,
      stop
    }))
    yield* Effect.sleep("3 seconds")
    const health = Ledger.make()
    const probe = yield* Effect.forkChild(
      Effect.gen(function*() {
        const r = yield* Load.request("GET", `${exam.url}/system/health`, undefined, 5_000)
        yield* health.record("health", r.status, r.text)
      }).pipe(Effect.repeat(Schedule.spaced("1 second")))
    )
    const from = yield* Clock.currentTimeMillis
    const what = yield* options.inject(exam)
    const to = yield* Clock.currentTimeMillis
    yield* Fiber.interrupt(probe)
    yield* Effect.sleep("3 seconds")
    yield* Ref.set(stop, true)
    yield* Fiber.join(load)
    const alive = yield* exam.running

    const stores = yield* Checker.settle(p, schema, 120_000)
    const inv = Checker.storeInvariants(stores, ledger.acks)
    const kafka = yield* Checker.kafkaInvariants(stores, "Exam", Cluster.brokers)
    const http = Ledger.summary(ledger)
    const during = Ledger.summary(ledger, { from, to })
    const figures: Report.Figures = {
      fault: options.title,
      load: `${http.requests} requests (creates/updates/deletes, 4 clients); ${what}`,
      zero: {
        acknowledgedLost: inv.acknowledgedLost,
        kafkaMissing: kafka.kafkaMissing,
        versionGaps: inv.versionGaps,
        snapshotMismatch: inv.snapshotMismatch,
        readModelMismatch: inv.readModelMismatch,
        outboxLeft: inv.outboxLeft,
        deadLetters: inv.deadLetters,
        non503: http.non503,
        errorBodyLeaks: http.leaks,
        serviceExited: alive ? 0 : 1
      },
      counted: {
        acknowledged: inv.acknowledged,
        events: inv.events,
        kafkaDuplicates: kafka.kafkaDuplicates,
        requestsDuringFault: during.requests,
        writesAcknowledgedDuringFault: ledger.acks.filter((a) => a.at >= from && a.at <= to).length,
        healthUnavailableAnswers: health.answers.filter((a) => a.status === 503).length
      },
      seconds: Math.round(((yield* Clock.currentTimeMillis) - started) / 1000)
    }
    yield* Report.write(`${options.fault}-${options.name}`, figures)
    // kept for a look when something is off
    if (Object.values(figures.zero).every((n) => n === 0)) yield* PrivatePg.dropSchema(p, schema)
    return { figures, inv, http }
  }))
