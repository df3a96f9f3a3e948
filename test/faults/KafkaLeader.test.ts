/**
 * Fault 4: the broker leading the partitions the exam service publishes to SIGKILLed under load,
 * started again after a while. The other two brokers take over (replication factor 3, min ISR 2);
 * no acknowledged write is lost, no event is missing from Kafka (duplicates are counted), the read
 * model catches up.
 */
import { assert, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as Cluster from "./support/Cluster.ts"
import { describeClusterFault } from "./support/Gate.ts"
import * as Report from "./support/Report.ts"
import * as WritesUnderFault from "./support/WritesUnderFault.ts"

const down = Report.scale(8, 20)

describeClusterFault("fault 4: a Kafka leader killed under load", () => {
  it.live(`the leader of ExamCreated/0 SIGKILLed for ${down} s under writes: nothing missing`, () =>
    Effect.gen(function*() {
      const { figures, inv, http } = yield* WritesUnderFault.run({
        fault: 4,
        name: "leader",
        title: "4. A Kafka leader killed under load",
        seed: Number(process.env["MINOS_FAULTS_SEED"] ?? 4),
        inject: () =>
          Effect.gen(function*() {
            const leader = yield* Cluster.leaderOf("ExamCreated", 0)
            yield* Cluster.kill(leader)
            yield* Effect.sleep(Duration.seconds(down))
            yield* Cluster.start(leader)
            return `broker ${leader} (leader of ExamCreated/0) SIGKILLed for ${down} s, then started`
          })
      })
      for (const [name, n] of Object.entries(figures.zero)) assert.strictEqual(n, 0, `${name}: ${inv.lostExamples.join("; ")} ${inv.readModelExamples.join("; ")} ${http.non503Examples.join("; ")}`)
    }), 900_000)
})
