/**
 * The rooms service's broker contracts: the participant declares its handlers with them and the exam
 * service's `ScheduleExam` saga sends them, so both sides share one set of Schemas.
 */
import { Schema } from "effect"
import * as Contract from "effect-minos/router/Contract"

export class NoRoomAvailable extends Schema.TaggedError<NoRoomAvailable>()("NoRoomAvailable", { seats: Schema.Int, message: Schema.String }) {}

export const BookRoom = Contract.command("BookRoom", {
  payload: Schema.Struct({ examUuid: Schema.String, seats: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)) }),
  success: Schema.Struct({ roomUuid: Schema.String }),
  error: NoRoomAvailable
})

export const ReleaseRoom = Contract.command("ReleaseRoom", {
  payload: Schema.Struct({ examUuid: Schema.String }),
  success: Schema.Struct({ released: Schema.Boolean })
})
