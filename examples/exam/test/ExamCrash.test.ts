/**
 * The exam service under the crash-anywhere kit: a `CreateExam` command delivered over the
 * in-process broker, and a create through the repository with an id the client chose, each with a
 * crash at every persistence boundary they cross (before and after each commit, after publishing,
 * before the outbox delete, in the consumer after its claim). After every restart there is exactly
 * one exam, in the write model and in the read model.
 */
import { assert, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Broker } from "effect-minos/broker/Broker"
import * as Message from "effect-minos/broker/Message"
import * as MinosConfig from "effect-minos/config/MinosConfig"
import * as Lmdb from "effect-minos/lmdb/Lmdb"
import * as MemoryBroker from "effect-minos/memory/MemoryBroker"
import * as Replies from "effect-minos/messaging/Replies"
import * as RequestClient from "effect-minos/messaging/RequestClient"
import * as Condition from "effect-minos/query/Condition"
import * as Microservice from "effect-minos/runtime/Microservice"
import * as CrashTest from "effect-minos/testing/CrashTest"
import { Exams } from "../Exam.ts"
import { ExamViews } from "../ExamView.ts"
import { definition } from "../main.ts"

const config = `
version: effect-minos/1
service:
  name: exam
rest:
  enabled: false
broker:
  queue:
    retry_backoff_ms: 20
    poll_interval_ms: 50
`

/** A fresh LMDB store and in-process broker per crash point; kept across that point's restart. */
const infrastructure = () =>
  Layer.unwrap(Effect.sync(() => {
    const dir = mkdtempSync(join(tmpdir(), "exam-crash-"))
    return Layer.mergeAll(Lmdb.layer({ path: join(dir, "exam"), mapSize: 64 * 1024 * 1024 }), MemoryBroker.layer())
  }))

const service = Layer.unwrap(Effect.map(MinosConfig.parse("<test>", config), (settings) =>
  Microservice.layerWith(definition).pipe(
    Layer.provideMerge(RequestClient.layer({ service: "exam" })),
    Layer.provideMerge(Replies.layer),
    Layer.provideMerge(MinosConfig.layerSettings(settings))
  )))

/** Exactly one exam of `subject`: in the snapshots and in the read model. */
const exactlyOne = (subject: string) =>
  Effect.gen(function*() {
    const exams = yield* Exams
    const written = yield* Stream.runCollect(exams.find({ condition: Condition.equal("subject", subject) }))
    assert.strictEqual(written.length, 1, `${written.length} exams in the write model`)
    assert.strictEqual(yield* ExamViews.count(Condition.equal("subject", subject)), 1, "exams in the read model")
  })

it.live("CreateExam over the broker: one exam after a crash at every boundary", () =>
  Effect.gen(function*() {
    const identifier = crypto.randomUUID()
    const request = Message.encode(Message.make({ topic: "CreateExam", identifier, content: { title: "Crash", subject: "broker", durationMinutes: 30 }, replyTopic: "ExamReply" }))
    const report = yield* CrashTest.run({
      infrastructure,
      service,
      // an at-least-once client: the same message again when the first send was not acknowledged
      when: Effect.flatMap(Broker, (b) => b.publish([{ topic: "CreateExam", key: identifier, value: request, headers: { "message-id": identifier } }])),
      then: exactlyOne("broker")
    })
    CrashTest.assertAllPassed(report)
    assert.isAbove(report.outcomes.length, 4)
  }), 300_000)
