/**
 * The query side of exam: a projection of the `Exam` aggregate's events into the `exams`
 * collection, queried by `GET /exams` and the `GetExams` query. It is inline: a command's own
 * transaction updates it (read-your-writes), and the service's event-log follower catches what a
 * command cannot (events committed by a saga's transaction). The framework applies each exam's
 * events once, in version order; the handlers below only say what an event does to the view.
 */
import { Effect, Option, Schema, Stream } from "effect"
import * as Entity from "effect-minos/domain/Entity"
import * as Projection from "effect-minos/projection/Projection"
import * as Condition from "effect-minos/query/Condition"
import { Exam, Status } from "./Exam.ts"

export const ExamView = Schema.Struct({
  uuid: Schema.String,
  version: Schema.Int,
  title: Schema.String,
  subject: Schema.String,
  durationMinutes: Schema.Int,
  status: Status,
  roomUuid: Schema.optional(Schema.String),
  seats: Schema.optional(Schema.Int),
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type ExamView = typeof ExamView.Type

type Fields = NonNullable<ReturnType<typeof Entity.fieldsOf<typeof Exam.fields.Type>>>

const iso = (ms: number) => new Date(ms).toISOString()

/** The view of an exam's fields after an event. */
const viewOf = (fields: Fields, event: { readonly uuid: string; readonly version: number; readonly createdAt: number }, createdAt: string): ExamView => ({
  ...fields,
  uuid: event.uuid,
  version: event.version,
  createdAt,
  updatedAt: iso(event.createdAt)
})

export const ExamViews = Projection.make({
  name: "ExamView",
  aggregate: Exam,
  collection: "exams",
  schema: ExamView,
  mode: "inline",
  on: {
    ExamCreated: (_, event) => Option.some(viewOf(Entity.fieldsOf(Exam.evolve({ _tag: "Absent" }, event.data))!, event, iso(event.createdAt))),
    // the entity's own reducer applies the field changes
    ExamUpdated: (view, event) =>
      Option.map(view, (v) => viewOf(Entity.fieldsOf(Exam.evolve({ _tag: "Active", fields: v }, event.data))!, event, v.createdAt)),
    ExamDeleted: () => Option.none()
  }
})

/** Exams by subject (all when omitted), newest first. */
export const list = (options: { readonly subject?: string | undefined; readonly limit?: number | undefined }) =>
  ExamViews.find({
    condition: options.subject === undefined ? Condition.TRUE : Condition.equal("subject", options.subject),
    ordering: Condition.desc("createdAt"),
    limit: options.limit ?? 100
  }).pipe(Stream.runCollect, Effect.map((items) => Array.from(items)))

/** Waits until the view has applied `uuid` at `version` or later (deleted included), at most `timeoutMs`. */
export const waitFor = (uuid: string, version: number, timeoutMs: number) => ExamViews.waitFor(uuid, version, timeoutMs)
