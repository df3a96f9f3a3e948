/**
 * The typed client of the exam service, made from its handler list, against the service itself
 * (embedded backends): typed inputs and outputs, the service's errors as `RestClientError`, and the
 * docs UI next to the routes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Exam, Exams } from "../../examples/exam/Exam.ts"
import { ExamViews } from "../../examples/exam/ExamView.ts"
import { handlers } from "../../examples/exam/Handlers.ts"
import { ScheduleExam } from "../../examples/exam/ScheduleExam.ts"
import * as Repository from "../../src/command/Repository.ts"
import * as MinosConfig from "../../src/config/MinosConfig.ts"
import * as RestClient from "../../src/http/RestClient.ts"
import * as Lmdb from "../../src/lmdb/Lmdb.ts"
import * as MemoryBroker from "../../src/memory/MemoryBroker.ts"
import * as Replies from "../../src/messaging/Replies.ts"
import * as Microservice from "../../src/runtime/Microservice.ts"
import { settings } from "../support/Services.ts"

const exam = Effect.gen(function*() {
  const layer = Microservice.layerWith({ handlers, services: Repository.layer(Exams, Exam), projections: [ExamViews], sagas: [ScheduleExam] }).pipe(
    Layer.provideMerge(Layer.fresh(Microservice.layerRequestClient)),
    Layer.provideMerge(Layer.mergeAll(Lmdb.layer({ path: mkdtempSync(join(tmpdir(), "client-")) }), Replies.layer, MemoryBroker.layer())),
    Layer.provideMerge(MinosConfig.layerSettings(settings({ name: "exam", rest: true, restPort: 0 })))
  )
  const context = yield* Layer.build(layer)
  const address = Microservice.httpAddress(context)
  assert.isTrue(address._tag === "Some")
  return address._tag === "Some" ? address.value.url : ""
})

describe("RestClient", () => {
  it.live("calls the exam service with typed inputs and outputs; errors are RestClientError", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* exam
      const client = yield* RestClient.make(handlers, { baseUrl: url })
      const created = yield* client.createExam({ body: { title: "Algebra", subject: "math", durationMinutes: 90 } })
      assert.strictEqual(created.version, 1)
      const one = yield* client.getExam({ params: { uuid: created.uuid } })
      assert.strictEqual(one.title, "Algebra")
      assert.strictEqual(one.status, "draft")
      const updated = yield* client.updateExam({ params: { uuid: created.uuid }, body: { title: "Algebra II" } })
      assert.strictEqual(updated.version, 2)
      const listed = yield* client.listExams({ query: { subject: "math", waitFor: `${created.uuid}@2` } })
      assert.deepStrictEqual(listed.items.map((i) => i.title), ["Algebra II"])

      const conflict = yield* Effect.flip(client.updateExam({ params: { uuid: created.uuid }, body: { seats: 3, expectedVersion: 7 } }))
      assert.strictEqual(conflict.reason, "Response")
      assert.strictEqual(conflict.error, "Conflict")
      const missing = yield* Effect.flip(client.getExam({ params: { uuid: "00000000-0000-4000-8000-000000000000" } }))
      assert.strictEqual(missing.error, "NotFound")
      const invalid = yield* Effect.flip(client.createExam({ body: { title: "", subject: "math", durationMinutes: 90 } }))
      assert.isTrue(invalid.reason === "Response" || invalid.reason === "Decode", invalid.message)

      // the docs UI is served next to the routes, over the same OpenAPI document
      const docs = yield* Effect.promise(() => fetch(`${url}/docs`).then(async (r) => ({ status: r.status, type: r.headers.get("content-type"), text: await r.text() })))
      assert.strictEqual(docs.status, 200)
      assert.include(docs.type ?? "", "text/html")
      assert.include(docs.text, "createExam")
    }).pipe(Effect.provide(FetchHttpClient.layer))), 60_000)
})
