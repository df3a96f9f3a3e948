/**
 * The `ScheduleExam` saga: book a room on the rooms service, then mark the exam scheduled; both
 * writes happen inside the execution's transaction and become visible together at the commit.
 *
 *   BookRoom (remote, on rooms) ──► MarkScheduled (local) ──► commit exam + rooms
 *        └─ compensation: ReleaseRoom
 *
 * No room with enough seats → `BookRoom` replies 400 `NoRoomAvailable` → the saga fails, nothing is
 * booked and the exam stays a draft.
 */
import { Effect, Schema } from "effect"
import * as Entity from "effect-minos/domain/Entity"
import * as Saga from "effect-minos/saga/Saga"
import { Exams } from "./Exam.ts"

export const Context = Schema.Struct({
  examUuid: Schema.String,
  seats: Schema.Int,
  roomUuid: Schema.optional(Schema.String)
})
export type Context = typeof Context.Type

export const ScheduleExam = Saga.make("ScheduleExam", { version: 1, context: Context, timeout: "2 minutes" })
  .remote("BookRoom", (ctx) => ({ topic: "BookRoom", content: { examUuid: ctx.examUuid, seats: ctx.seats } }))
  .onSuccess((ctx, reply) => Effect.succeed({ ...ctx, roomUuid: (reply as { roomUuid: string }).roomUuid }))
  .onFailure((ctx) => ({ topic: "ReleaseRoom", content: { examUuid: ctx.examUuid } }))
  .withTimeout("30 seconds")
  .local("MarkScheduled", (ctx) =>
    Effect.gen(function*() {
      const exams = yield* Exams
      yield* exams.handle(ctx.examUuid, Entity.update({ status: "scheduled", roomUuid: ctx.roomUuid, seats: ctx.seats }))
      return ctx
    }))
