/**
 * The `ScheduleExam` saga: book a room on the rooms service, then mark the exam scheduled; both
 * writes happen inside the execution's transaction and become visible together at the commit.
 *
 *   BookRoom (remote, on rooms) ──► MarkScheduled (local) ──► commit exam + rooms
 *        └─ compensation: ReleaseRoom
 *
 * No room with enough seats → `BookRoom` replies 400 `NoRoomAvailable` → the saga fails, nothing is
 * booked and the exam stays a draft. Two schedules racing for the same room: the loser's booking is
 * refused while the winner's is reserved, and its step is tried again on fresh state (the next room,
 * or the same one with fewer free seats).
 */
import { Effect, Schema } from "effect"
import * as Entity from "effect-minos/domain/Entity"
import * as Saga from "effect-minos/saga/Saga"
import { BookRoom, ReleaseRoom } from "../rooms/Contracts.ts"
import { Exams } from "./Exam.ts"

export const Context = Schema.Struct({
  examUuid: Schema.String,
  seats: Schema.Int,
  roomUuid: Schema.optional(Schema.String)
})
export type Context = typeof Context.Type

export const ScheduleExam = Saga.make("ScheduleExam", { version: 1, context: Context, timeout: "2 minutes" })
  .remote("BookRoom", BookRoom, (ctx) => ({ examUuid: ctx.examUuid, seats: ctx.seats }))
  .onSuccess((ctx, reply) => Effect.succeed({ ...ctx, roomUuid: reply.roomUuid }))
  .onFailure((ctx) => Saga.request(ReleaseRoom, { examUuid: ctx.examUuid }))
  .withTimeout("30 seconds")
  .local("MarkScheduled", (ctx) =>
    Effect.gen(function*() {
      const exams = yield* Exams
      yield* exams.handle(ctx.examUuid, Entity.update({ status: "scheduled", roomUuid: ctx.roomUuid, seats: ctx.seats }))
      return ctx
    }))
  .build
