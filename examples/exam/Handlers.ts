/**
 * The exam microservice's handlers: REST and broker commands on the write side (the `Exam`
 * aggregate) and REST and broker queries on the read side (the `ExamView` projection).
 */
import { Effect, Schema } from "effect"
import * as Entity from "effect-minos/domain/Entity"
import type * as Repository from "effect-minos/command/Repository"
import * as Router from "effect-minos/router/Router"
import { SagaManager } from "effect-minos/saga/SagaManager"
import { Exam, Exams, fields } from "./Exam.ts"
import * as ExamView from "./ExamView.ts"
import { ScheduleExam } from "./ScheduleExam.ts"

const Uuid = Schema.String.check(Schema.isUUID())
const Ref = Schema.Struct({ uuid: Schema.String, version: Schema.Int })

export const CreateExam = Schema.Struct({ title: fields.title, subject: fields.subject, durationMinutes: fields.durationMinutes })
export const UpdateExam = Schema.Struct({
  title: Schema.optional(fields.title),
  subject: Schema.optional(fields.subject),
  durationMinutes: Schema.optional(fields.durationMinutes),
  status: Schema.optional(fields.status),
  roomUuid: Schema.optional(Schema.NullOr(Schema.String)),
  seats: Schema.optional(Schema.NullOr(Schema.Int)),
  expectedVersion: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)))
})

/** What `GET /exams/:uuid` and `GetExam` return. */
export const ExamBody = Schema.Struct({
  uuid: Schema.String,
  version: Schema.Int,
  createdAt: Schema.String,
  updatedAt: Schema.String,
  ...fields
})

const toBody = (loaded: Repository.Loaded<typeof Exam.initialState>) => ({
  uuid: loaded.id,
  version: loaded.version,
  createdAt: new Date(loaded.createdAt ?? 0).toISOString(),
  updatedAt: new Date(loaded.updatedAt ?? 0).toISOString(),
  ...Entity.fieldsOf(loaded.state)!
})

const create = (input: typeof CreateExam.Type) =>
  Effect.flatMap(Exams, (exams) => exams.create(Entity.create({ ...input, status: "draft" }))).pipe(
    Effect.map((h) => ({ uuid: h.id, version: h.version }))
  )

const update = (uuid: string, input: typeof UpdateExam.Type) =>
  Effect.gen(function*() {
    const { expectedVersion, ...changes } = input
    const exams = yield* Exams
    const handled = yield* exams.handle(uuid, Entity.update(changes), { expectedVersion })
    return { uuid, version: handled.version }
  })

const remove = (uuid: string) =>
  Effect.flatMap(Exams, (exams) => exams.handle(uuid, Entity.delete)).pipe(Effect.map((h) => ({ uuid, version: h.version })))

const get = (uuid: string) => Effect.flatMap(Exams, (exams) => exams.get(uuid)).pipe(Effect.map(toBody))

const Query = Schema.Struct({
  subject: Schema.optional(Schema.String),
  limit: Schema.optional(Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 1000 }))),
  /** `uuid@version`: wait (up to 5 s) until the read side has caught up with that write. */
  waitFor: Schema.optional(Schema.String.check(Schema.isPattern(/^[0-9a-f-]{36}@\d+$/i)))
})

const list = (query: typeof Query.Type) =>
  Effect.gen(function*() {
    if (query.waitFor !== undefined) {
      const [uuid, version] = query.waitFor.split("@")
      yield* ExamView.waitFor(uuid!, Number(version), 5_000)
    }
    return { items: yield* ExamView.list({ subject: query.subject, limit: query.limit }) }
  })

export const handlers = [
  // write side, REST
  Router.rest("POST", "/exams", { name: "createExam", body: CreateExam, success: Ref, status: 201, summary: "Create an exam (draft)" }, ({ body }) => create(body)),
  Router.rest("GET", "/exams/:uuid", { name: "getExam", params: Schema.Struct({ uuid: Uuid }), success: ExamBody, summary: "One exam" }, ({ params }) => get(params.uuid)),
  Router.rest("PATCH", "/exams/:uuid", { name: "updateExam", params: Schema.Struct({ uuid: Uuid }), body: UpdateExam, success: Ref, summary: "Change an exam" }, ({ body, params }) =>
    update(params.uuid, body)),
  Router.rest("DELETE", "/exams/:uuid", { name: "deleteExam", params: Schema.Struct({ uuid: Uuid }), success: Ref, summary: "Delete an exam" }, ({ params }) => remove(params.uuid)),
  // scheduling: a saga across exam and rooms
  Router.rest("POST", "/exams/:uuid/schedule", {
    name: "scheduleExam",
    params: Schema.Struct({ uuid: Uuid }),
    body: Schema.Struct({ seats: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100_000 })) }),
    success: Schema.Struct({ sagaUuid: Schema.String }),
    status: 202,
    summary: "Schedule an exam (books a room on the rooms service); follow it at GET /sagas/{sagaUuid}"
  }, ({ body, params }) =>
    Effect.gen(function*() {
      // a missing or deleted exam is the caller's error, before any room is booked
      yield* Effect.flatMap(Exams, (exams) => exams.get(params.uuid))
      const sagaUuid = yield* Effect.flatMap(SagaManager, (m) => m.start(ScheduleExam, { examUuid: params.uuid, seats: body.seats }))
      return { sagaUuid }
    })),
  // read side, REST
  Router.rest("GET", "/exams", { name: "listExams", query: Query, success: Schema.Struct({ items: Schema.Array(ExamView.ExamView) }), summary: "Exams from the read model (eventually consistent)" }, ({ query }) => list(query)),
  // the same over the broker
  Router.command("CreateExam", { payload: CreateExam, success: Ref }, create),
  Router.command("UpdateExam", { payload: Schema.Struct({ uuid: Uuid, ...UpdateExam.fields }), success: Ref }, ({ uuid, ...rest }) => update(uuid, rest)),
  Router.command("DeleteExam", { payload: Schema.Struct({ uuid: Uuid }), success: Ref }, ({ uuid }) => remove(uuid)),
  Router.query("GetExam", { payload: Schema.Struct({ uuid: Uuid }), success: ExamBody }, ({ uuid }) => get(uuid)),
  Router.query("GetExams", { payload: Schema.Struct({ subject: Schema.optional(Schema.String), limit: Schema.optional(Schema.Int) }) }, (q) =>
    Effect.map(ExamView.list(q), (items) => ({ items }))),
  // the same over GraphQL: POST /exam/graphql, SDL at GET /exam/graphql/schema
  Router.graphql.query("exam", { args: Schema.Struct({ uuid: Uuid }), output: ExamBody, description: "One exam" }, ({ uuid }) => get(uuid)),
  Router.graphql.query("exams", {
    args: Schema.Struct({ subject: Schema.optional(Schema.String), limit: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 }))) }),
    output: Schema.Array(ExamView.ExamView),
    description: "Exams from the read model"
  }, (q) => ExamView.list(q)),
  Router.graphql.mutation("createExam", { args: CreateExam, output: Ref, description: "Create an exam (draft)" }, create),
  Router.graphql.mutation("updateExam", { args: Schema.Struct({ uuid: Uuid, ...UpdateExam.fields }), output: Ref, description: "Change an exam" }, ({ uuid, ...rest }) =>
    update(uuid, rest)),
  Router.graphql.mutation("deleteExam", { args: Schema.Struct({ uuid: Uuid }), output: Ref, description: "Delete an exam" }, ({ uuid }) => remove(uuid))
] as const
