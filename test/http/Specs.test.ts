/**
 * The specs of a real service (exam, on the embedded backends, with rooms' commands as what its
 * saga sends), validated by third-party validators: `@readme/openapi-parser` for OpenAPI 3.1 and
 * `@asyncapi/parser` for AsyncAPI 3.0 — plus what each must contain.
 */
import { assert, describe, it } from "@effect/vitest"
import { Parser } from "@asyncapi/parser"
import { compileErrors, validate } from "@readme/openapi-parser"
import { Context, Effect, Layer } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Exam, Exams } from "../../examples/exam/Exam.ts"
import { handlers as examHandlers } from "../../examples/exam/Handlers.ts"
import { ScheduleExam } from "../../examples/exam/ScheduleExam.ts"
import { ReleaseRoom } from "../../examples/rooms/Contracts.ts"
import * as Repository from "../../src/command/Repository.ts"
import * as MinosConfig from "../../src/config/MinosConfig.ts"
import * as Lmdb from "../../src/lmdb/Lmdb.ts"
import * as MemoryBroker from "../../src/memory/MemoryBroker.ts"
import * as Replies from "../../src/messaging/Replies.ts"
import * as Microservice from "../../src/runtime/Microservice.ts"
import { http } from "../support/Process.ts"
import { settings } from "../support/Services.ts"

/** What exam sends beside its saga's remote step (BookRoom): the compensation's contract. */
const sends = [ReleaseRoom]

const exam = Effect.gen(function*() {
  const layer = Microservice.layerWith({ handlers: examHandlers, services: Repository.layer(Exams, Exam), sagas: [ScheduleExam], aggregates: [Exam], sends }).pipe(
    Layer.provideMerge(Layer.fresh(Microservice.layerRequestClient)),
    Layer.provideMerge(Layer.mergeAll(Lmdb.layer({ path: mkdtempSync(join(tmpdir(), "specs-")) }), Replies.layer, MemoryBroker.layer())),
    Layer.provideMerge(MinosConfig.layerSettings(settings({ name: "exam", rest: true, restPort: 0 })))
  )
  const context = yield* Layer.build(layer)
  return Microservice.httpAddress(context).pipe((o) => (o._tag === "Some" ? o.value.url : ""))
})

describe("Specs", () => {
  it.live("OpenAPI 3.1 of the exam service validates and documents every route", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* exam
      const doc = (yield* http("GET", `${url}/spec/openapi`)).body
      const result = yield* Effect.promise(() => validate(structuredClone(doc)))
      assert.isTrue(result.valid, result.valid ? "" : compileErrors(result))
      assert.containsAllKeys(doc.paths, ["/exams", "/exams/{uuid}", "/exams/{uuid}/schedule", "/system/health"])
    })), 60_000)

  it.live("AsyncAPI 3.0 of the exam service validates: receive and send operations, field topics, reply channels", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* exam
      const doc = (yield* http("GET", `${url}/spec/asyncapi`)).body
      const diagnostics = yield* Effect.promise(() => new Parser().validate(JSON.stringify(doc)))
      const errors = diagnostics.filter((d) => d.severity === 0)
      assert.deepStrictEqual(errors.map((d) => `${d.path.join(".")}: ${d.message}`), [])

      // receives its commands and queries, with a reply on the requester's reply topic
      const create = doc.operations["receive.CreateExam"]
      assert.strictEqual(create.action, "receive")
      assert.deepStrictEqual(create.reply.address, { location: "$message.payload#/reply_topic" })
      assert.strictEqual(doc.operations["receive.GetExam"].action, "receive")
      // sends its domain events, one topic per changed field too, with the typed envelope
      for (const topic of ["ExamCreated", "ExamUpdated", "ExamUpdated.title", "ExamUpdated.seats", "ExamDeleted"]) {
        assert.strictEqual(doc.operations[`send.${topic}`]?.action, "send", topic)
        assert.strictEqual(doc.channels[topic].address, topic)
      }
      const created = doc.components.messages["ExamCreated.published"].payload.properties.payload.properties.content
      assert.deepStrictEqual(created.required, ["uuid", "aggregate", "version", "type", "createdAt", "data"])
      assert.include(JSON.stringify(created.properties.data), "durationMinutes")
      const title = doc.components.messages["ExamUpdated.title.published"].payload.properties.payload.properties.content.properties.data
      assert.include(JSON.stringify(title), `"enum":["title"]`)
      // sends rooms' commands; their replies come back on ExamReply
      const book = doc.operations["send.BookRoom"]
      assert.strictEqual(book.action, "send")
      assert.strictEqual(book.reply.channel.$ref, "#/channels/ExamReply")
      assert.strictEqual(doc.channels["ExamReply"].address, "ExamReply")
      const bookReply = JSON.stringify(doc.components.messages["BookRoom.reply.received"])
      assert.include(bookReply, "roomUuid")
      // the contract's error union documents the 400 reply
      assert.include(bookReply, "NoRoomAvailable")
      assert.strictEqual(doc.operations["send.ReleaseRoom"].action, "send")
    })), 60_000)
})
