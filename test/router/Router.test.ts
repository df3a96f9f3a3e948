import { assert, describe, it } from "@effect/vitest"
import { Effect, Ref, Schema } from "effect"
import * as Request from "../../src/router/Request.ts"
import * as Router from "../../src/router/Router.ts"

const noop = () => Effect.void

describe("Router", () => {
  it.effect("refuses two command handlers on one topic", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(Router.make([
        Router.command("CreateExam", { payload: Schema.Unknown }, noop),
        Router.query("CreateExam", { payload: Schema.Unknown }, noop)
      ]))
      assert.strictEqual(e.reason, "Duplicate")
      assert.strictEqual(e.route, "CreateExam")
    }))

  it.effect("refuses a topic with both event and command handlers, and duplicate REST routes", () =>
    Effect.gen(function*() {
      const mixed = yield* Effect.flip(Router.make([
        Router.event("ExamCreated", { payload: Schema.Unknown }, noop),
        Router.command("ExamCreated", { payload: Schema.Unknown }, noop)
      ]))
      assert.strictEqual(mixed.reason, "Duplicate")
      const rest = yield* Effect.flip(Router.make([
        Router.rest("GET", "/exams/:uuid", {}, noop),
        Router.rest("GET", "/exams/:id", {}, noop)
      ]))
      assert.strictEqual(rest.reason, "Duplicate")
    }))

  it.effect("keeps several event handlers per topic", () =>
    Effect.gen(function*() {
      const routes = yield* Router.make([
        Router.event("ExamCreated", { payload: Schema.Unknown }, noop),
        Router.event("ExamCreated", { payload: Schema.Unknown }, noop),
        Router.command("CreateExam", { payload: Schema.Unknown }, noop)
      ])
      assert.strictEqual(routes.events.get("ExamCreated")?.length, 2)
      assert.deepStrictEqual([...routes.topics].sort(), ["CreateExam", "ExamCreated"])
    }))

  it.effect("refuses invalid topics and schedules", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* Effect.flip(Router.make([Router.command("bad topic", { payload: Schema.Unknown }, noop)]))).reason, "Invalid")
      const cron = yield* Effect.flip(Router.make([Router.periodic("every minute", "job", Effect.void)]))
      assert.strictEqual(cron.reason, "Invalid")
      assert.strictEqual(cron.route, "job")
      yield* Router.make([Router.periodic("*/5 * * * *", "ok", Effect.void), Router.periodic("@reboot", "boot", Effect.void)])
    }))

  it.effect("runs middleware outermost first around the handler, with the Request", () =>
    Effect.gen(function*() {
      const log = yield* Ref.make<ReadonlyArray<string>>([])
      const mw = (name: string): Router.Middleware => (effect, request) =>
        Effect.gen(function*() {
          yield* Ref.update(log, (l) => [...l, `${name}>${request.route}`])
          const a = yield* effect
          yield* Ref.update(log, (l) => [...l, `<${name}`])
          return a
        })
      const routes = yield* Router.make([
        Router.command("Hello", { payload: Schema.Struct({ name: Schema.String }) }, ({ name }) =>
          Effect.gen(function*() {
            const request = yield* Request.Request
            yield* request.setHeader("greeted", name)
            yield* Ref.update(log, (l) => [...l, `handler:${request.user}`])
            return `hi ${name}`
          }))
      ], { middleware: [mw("outer"), mw("inner")] })
      const handler = routes.commands.get("Hello")!
      const request = yield* Request.make({ kind: "command", route: "Hello", identifier: "id", headers: { user: "u1" } })
      const result = yield* Router.withMiddleware(routes.middleware, request, handler.handle({ name: "Ada" }))
      assert.strictEqual(result, "hi Ada")
      assert.deepStrictEqual(yield* Ref.get(log), ["outer>Hello", "inner>Hello", "handler:u1", "<inner", "<outer"])
      assert.deepStrictEqual(yield* request.replyHeaders, { user: "u1", greeted: "Ada" })
    }))
})
