/**
 * Fault 2: the whole Kafka cluster stopped (every broker SIGKILLed) under load, and started again.
 * Writes need only PostgreSQL, so they go on being acknowledged; their events wait in the outbox
 * and reach Kafka once it is back, none missing; the read model catches up.
 */
import { assert, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as Cluster from "./support/Cluster.ts"
import { describeClusterFault } from "./support/Gate.ts"
import * as Report from "./support/Report.ts"
import * as WritesUnderFault from "./support/WritesUnderFault.ts"

const seconds = Report.scale(8, 30)

describeClusterFault("fault 2: Kafka stopped under load", () => {
  it.live(`every broker down ${seconds} s under writes: writes go on, every event reaches Kafka afterwards`, () =>
    Effect.gen(function*() {
      const { figures, inv, http } = yield* WritesUnderFault.run({
        fault: 2,
        name: "kafkadown",
        title: "2. Kafka stopped under load",
        seed: Number(process.env["MINOS_FAULTS_SEED"] ?? 2),
        inject: () =>
          Effect.gen(function*() {
            yield* Effect.forEach([1, 2, 3], Cluster.kill, { discard: true })
            yield* Effect.sleep(Duration.seconds(seconds))
            // `cluster up` starts every node that is down and waits until all serve
            yield* Cluster.up
            return `all 3 brokers SIGKILLed for ${seconds} s, then started`
          })
      })
      for (const [name, n] of Object.entries(figures.zero)) assert.strictEqual(n, 0, `${name}: ${inv.lostExamples.join("; ")} ${inv.readModelExamples.join("; ")} ${http.non503Examples.join("; ")}`)
      assert.isAbove(Number(figures.counted["writesAcknowledgedDuringFault"]), 0, "no write was acknowledged while Kafka was down")
    }), 900_000)
})
