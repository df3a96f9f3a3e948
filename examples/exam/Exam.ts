/**
 * The exam aggregate: an entity whose events are `ExamCreated`, `ExamUpdated` (+ one
 * `ExamUpdated.{field}` message per changed field) and `ExamDeleted`.
 */
import { Context, Schema } from "effect"
import * as Entity from "effect-minos/domain/Entity"
import type * as Repository from "effect-minos/command/Repository"

export const Status = Schema.Literals(["draft", "scheduled", "cancelled"])

export const fields = {
  title: Schema.String.check(Schema.isBetweenLength(1, 200)),
  subject: Schema.String.check(Schema.isBetweenLength(1, 100)),
  durationMinutes: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 600 })),
  status: Status,
  roomUuid: Schema.optional(Schema.String),
  seats: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)))
}

export const Exam = Entity.make("Exam", fields)

/** The exam repository, as a service of the exam microservice. */
export class Exams extends Context.Service<Exams, Repository.Repository<typeof Exam>>()("exam/Exams") {}
