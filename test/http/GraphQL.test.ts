/**
 * GraphQL on the exam service (embedded backends): the SDL generated from the handlers' Schemas,
 * queries and mutations over `POST /exam/graphql`, and the status of each kind of failure as minos
 * had it (the highest of 200, 400, the failed fields' own statuses, 500), partial data kept.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { buildSchema } from "graphql"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Exam, Exams } from "../../examples/exam/Exam.ts"
import { ExamViews } from "../../examples/exam/ExamView.ts"
import { handlers } from "../../examples/exam/Handlers.ts"
import { ScheduleExam } from "../../examples/exam/ScheduleExam.ts"
import * as Repository from "../../src/command/Repository.ts"
import * as MinosConfig from "../../src/config/MinosConfig.ts"
import * as GraphQL from "../../src/http/GraphQL.ts"
import * as Lmdb from "../../src/lmdb/Lmdb.ts"
import * as MemoryBroker from "../../src/memory/MemoryBroker.ts"
import * as Replies from "../../src/messaging/Replies.ts"
import * as Router from "../../src/router/Router.ts"
import * as Microservice from "../../src/runtime/Microservice.ts"
import { http } from "../support/Process.ts"
import { settings } from "../support/Services.ts"

class Boom extends Schema.TaggedError<Boom>()("Boom", { reason: Schema.String }) {}

const extra = [
  Router.graphql.query("boom", { output: Schema.String }, () => Effect.fail(new Boom({ reason: "no" }))),
  Router.graphql.query("crash", { output: Schema.String }, () => Effect.die(new Error("secret detail")))
] as const

const exam = Effect.gen(function*() {
  const layer = Microservice.layerWith({ handlers: [...handlers, ...extra], services: Repository.layer(Exams, Exam), projections: [ExamViews], sagas: [ScheduleExam] }).pipe(
    Layer.provideMerge(Layer.fresh(Microservice.layerRequestClient)),
    Layer.provideMerge(Layer.mergeAll(Lmdb.layer({ path: mkdtempSync(join(tmpdir(), "graphql-")) }), Replies.layer, MemoryBroker.layer())),
    Layer.provideMerge(MinosConfig.layerSettings(settings({ name: "exam", rest: true, restPort: 0 })))
  )
  const context = yield* Layer.build(layer)
  const address = Microservice.httpAddress(context)
  return address._tag === "Some" ? address.value.url : ""
})

const gql = (url: string, query: string, variables?: Record<string, unknown>) => http("POST", `${url}/exam/graphql`, { query, variables })

describe("GraphQL", () => {
  it.live("serves the SDL generated from the handlers' Schemas", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* exam
      const res = yield* Effect.promise(() => fetch(`${url}/exam/graphql/schema`).then(async (r) => ({ status: r.status, text: await r.text() })))
      assert.strictEqual(res.status, 200)
      // a valid schema by graphql-js's own parser
      const parsed = buildSchema(res.text)
      const query = parsed.getQueryType()!.getFields()
      assert.containsAllKeys(query, ["exam", "exams"])
      // nullable at the top level, so one failing field keeps the others' data
      assert.strictEqual(String(query["exam"]!.type), "Exam")
      assert.strictEqual(String(query["exam"]!.args[0]!.type), "String!")
      const mutation = parsed.getMutationType()!.getFields()
      assert.containsAllKeys(mutation, ["createExam", "updateExam", "deleteExam"])
      const create = Object.fromEntries(mutation["createExam"]!.args.map((a) => [a.name, String(a.type)]))
      assert.deepStrictEqual(create, { title: "String!", subject: "String!", durationMinutes: "Int!" })
      // optional fields are nullable; string literals are an enum
      assert.match(res.text, /seats: Int\n/)
      assert.match(res.text, /status: \w+!/)
      assert.match(res.text, /enum \w+ \{\s+draft\s+scheduled\s+cancelled\s+\}/)
    })), 60_000)

  it.live("queries and mutations run the same handlers as REST", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* exam
      const created = yield* gql(url, `mutation { createExam(title: "Algebra", subject: "math", durationMinutes: 90) { uuid version } }`)
      assert.strictEqual(created.status, 200, JSON.stringify(created.body))
      const uuid = created.body.data.createExam.uuid as string
      assert.strictEqual(created.body.data.createExam.version, 1)
      const updated = yield* gql(url, `mutation ($uuid: String!) { updateExam(uuid: $uuid, seats: 12) { version } }`, { uuid })
      assert.strictEqual(updated.body.data.updateExam.version, 2)
      const one = yield* gql(url, `query ($uuid: String!) { exam(uuid: $uuid) { title seats status } }`, { uuid })
      assert.deepStrictEqual(one.body, { data: { exam: { title: "Algebra", seats: 12, status: "draft" } } })
      // REST sees the same exam
      assert.strictEqual((yield* http("GET", `${url}/exams/${uuid}`)).body.seats, 12)
      const listed = yield* gql(url, `{ exams(subject: "math") { uuid title } }`)
      assert.deepStrictEqual(listed.body.data.exams, [{ uuid, title: "Algebra" }])
    })), 60_000)

  it.live("errors: the status is the highest of 200, 400, each field's and 500; partial data is kept", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* exam
      const syntax = yield* gql(url, `{ exam(uuid: `)
      assert.strictEqual(syntax.status, 400)
      assert.strictEqual(syntax.body.errors[0].extensions.error, "InvalidRequest")
      const unknownField = yield* gql(url, `{ nope }`)
      assert.strictEqual(unknownField.status, 400)
      const badArgs = yield* gql(url, `mutation { createExam(title: "", subject: "math", durationMinutes: 90) { uuid } }`)
      assert.strictEqual(badArgs.status, 400)
      assert.strictEqual(badArgs.body.errors[0].extensions.error, "InvalidRequest")
      const missing = "00000000-0000-4000-8000-000000000000"
      const notFound = yield* gql(url, `{ exam(uuid: "${missing}") { title } }`)
      assert.strictEqual(notFound.status, 404)
      assert.strictEqual(notFound.body.errors[0].extensions.error, "NotFound")
      assert.deepStrictEqual(notFound.body.errors[0].path, ["exam"])
      // one field fails with a domain error (400), one succeeds: data for the good one
      const mixed = yield* gql(url, `{ exams { uuid } boom }`)
      assert.strictEqual(mixed.status, 400)
      assert.deepStrictEqual(mixed.body.data.exams, [])
      assert.strictEqual(mixed.body.errors[0].extensions.error, "Boom")
      assert.strictEqual(mixed.body.errors[0].extensions.reason, "no")
      // a 404 and a 400 together: the highest
      const both = yield* gql(url, `{ exam(uuid: "${missing}") { title } boom }`)
      assert.strictEqual(both.status, 404)
      // a defect: 500, nothing of it in the body
      const crash = yield* gql(url, `{ crash exams { uuid } }`)
      assert.strictEqual(crash.status, 500)
      assert.strictEqual(crash.body.errors[0].extensions.error, "InternalError")
      assert.notInclude(JSON.stringify(crash.body), "secret detail")
      // not a GraphQL request at all
      assert.strictEqual((yield* http("POST", `${url}/exam/graphql`, { nope: 1 })).status, 400)
      assert.strictEqual((yield* http("GET", `${url}/exam/graphql`)).status, 405)
    })), 60_000)

  it.effect("a service without GraphQL fields has no schema; duplicate fields are refused", () =>
    Effect.gen(function*() {
      assert.isUndefined(GraphQL.schemaOf([]))
      const dup = yield* Effect.flip(Router.make([
        Router.graphql.query("a", { output: Schema.String }, () => Effect.succeed("x")),
        Router.graphql.query("a", { output: Schema.String }, () => Effect.succeed("y"))
      ]))
      assert.strictEqual(dup.reason, "Duplicate")
    }))
})
