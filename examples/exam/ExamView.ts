/**
 * The query side of exam: a read model of exams, kept up to date by event handlers from the
 * `ExamCreated` / `ExamUpdated` / `ExamDeleted` domain events (eventually consistent), and queried by
 * `GET /exams` and the `GetExams` query.
 */
import { Duration, Effect, Option, Schedule, Schema, Stream } from "effect"
import * as Condition from "effect-minos/query/Condition"
import * as DocumentStore from "effect-minos/readmodel/DocumentStore"
import { Status } from "./Exam.ts"

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

const views = DocumentStore.collection("exams", ExamView)

/** The content of a domain event as the repository publishes it. */
export const DomainEvent = Schema.Struct({
  uuid: Schema.String,
  aggregate: Schema.String,
  version: Schema.Int,
  type: Schema.String,
  createdAt: Schema.Number,
  data: Schema.Unknown
})
type DomainEvent = typeof DomainEvent.Type

const iso = (ms: number) => new Date(ms).toISOString()

/** ExamCreated → a new view. */
export const onCreated = (event: DomainEvent) =>
  Effect.gen(function*() {
    const fields = (event.data as { fields: Record<string, unknown> }).fields
    const existing = yield* views.get(event.uuid)
    // redelivered or older than what the view has: nothing to do
    if (Option.isSome(existing) && existing.value.version >= event.version) return
    yield* views.put(event.uuid, Schema.decodeUnknownSync(ExamView)({
      ...fields,
      uuid: event.uuid,
      version: event.version,
      createdAt: iso(event.createdAt),
      updatedAt: iso(event.createdAt)
    }))
  })

/** ExamUpdated → the changed fields applied. */
export const onUpdated = (event: DomainEvent) =>
  Effect.gen(function*() {
    const existing = yield* views.get(event.uuid)
    if (Option.isNone(existing) || existing.value.version >= event.version) return
    const next: Record<string, unknown> = { ...existing.value, version: event.version, updatedAt: iso(event.createdAt) }
    for (const change of (event.data as { diff: ReadonlyArray<{ name: string; value?: unknown }> }).diff) {
      if ("value" in change) next[change.name] = change.value
      else delete next[change.name]
    }
    yield* views.put(event.uuid, Schema.decodeUnknownSync(ExamView)(next))
  })

/** ExamDeleted → the view removed. */
export const onDeleted = (event: DomainEvent) => Effect.asVoid(views.remove(event.uuid))

/** Exams by subject (all when omitted), newest first. */
export const list = (options: { readonly subject?: string | undefined; readonly limit?: number | undefined }) =>
  views.find({
    condition: options.subject === undefined ? Condition.TRUE : Condition.equal("subject", options.subject),
    ordering: Condition.desc("createdAt"),
    limit: options.limit ?? 100
  }).pipe(Stream.runCollect, Effect.map((items) => Array.from(items)))

/** Waits until the view has `uuid` at `version` or later (or gone), at most `timeoutMs`. */
export const waitFor = (uuid: string, version: number, timeoutMs: number) =>
  views.get(uuid).pipe(
    Effect.map((view) => Option.isSome(view) && view.value.version >= version),
    Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (caughtUp) => caughtUp }),
    Effect.timeoutOrElse({ duration: Duration.millis(timeoutMs), orElse: () => Effect.succeed(false) })
  )
