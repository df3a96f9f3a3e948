/** A projection of the fixture `Exam` entity and helpers to make its published events. */
import { Effect, Option, Schema } from "effect"
import * as Entity from "../../src/domain/Entity.ts"
import * as Projection from "../../src/projection/Projection.ts"
import { domainEventContent } from "../../src/command/Repository.ts"
import { Exam } from "../fixtures/Domain.ts"

export const ExamView = Schema.Struct({
  uuid: Schema.String,
  version: Schema.Int,
  title: Schema.String,
  subject: Schema.String,
  durationMinutes: Schema.Int,
  status: Schema.String,
  roomUuid: Schema.optional(Schema.String),
  seats: Schema.optional(Schema.Int)
})
export type ExamView = typeof ExamView.Type

type Fields = NonNullable<Entity.EntityState<typeof Exam.fields.Type> extends infer S ? S extends { fields: infer F } ? F : never : never>

const view = (uuid: string, version: number, fields: Fields): ExamView => ({
  uuid,
  version,
  title: fields.title,
  subject: fields.subject,
  durationMinutes: fields.durationMinutes,
  status: fields.status,
  ...(fields.roomUuid === undefined ? {} : { roomUuid: fields.roomUuid }),
  ...(fields.seats === undefined ? {} : { seats: fields.seats })
})

/** The projection under test; `effectful` makes the update handler an Effect. */
export const examViews = (name: string, options: { readonly mode?: "inline" | "async"; readonly source?: Projection.Source } = {}) =>
  Projection.make({
    name,
    aggregate: Exam,
    collection: name.replace(/[^A-Za-z0-9]/g, ""),
    schema: ExamView,
    ...options,
    on: {
      ExamCreated: (_, event) => Option.some(view(event.uuid, event.version, Entity.fieldsOf(Exam.evolve({ _tag: "Absent" }, event.data))!)),
      ExamUpdated: (current, event) =>
        Effect.succeed(Option.map(current, (v) => view(v.uuid, event.version, Entity.fieldsOf(Exam.evolve({ _tag: "Active", fields: v as unknown as Fields }, event.data))!))),
      ExamDeleted: () => Option.none()
    }
  })

/** The published content of one event of aggregate `id`. */
export const created = (id: string, fields: Record<string, unknown>) => domainEventContent("Exam", id, 1, "ExamCreated", 1_000, { _tag: "ExamCreated", fields })
export const updated = (id: string, version: number, diff: ReadonlyArray<{ name: string; value?: unknown }>) =>
  domainEventContent("Exam", id, version, "ExamUpdated", 1_000 + version, { _tag: "ExamUpdated", diff })
export const deleted = (id: string, version: number) => domainEventContent("Exam", id, version, "ExamDeleted", 1_000 + version, { _tag: "ExamDeleted" })

/** Every ordering of `xs`. */
export const permutations = <A>(xs: ReadonlyArray<A>): Array<Array<A>> =>
  xs.length <= 1 ? [xs.slice()] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]))
