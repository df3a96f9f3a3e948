/**
 * The exam microservice (the minos setup guide's example), as one layer:
 * `effect-minos start config.yml` (or `npm start`) runs it.
 */
import { Layer } from "effect"
import * as Repository from "effect-minos/command/Repository"
import * as Microservice from "effect-minos/runtime/Microservice"
import { ReleaseRoom } from "../rooms/Contracts.ts"
import { Exam, Exams } from "./Exam.ts"
import { ExamViews } from "./ExamView.ts"
import { handlers } from "./Handlers.ts"
import { ScheduleExam } from "./ScheduleExam.ts"

/** What the service is made of (tests build it on infrastructure of their own). */
export const definition = {
  handlers,
  services: Layer.mergeAll(Repository.layer(Exams, Exam)),
  projections: [ExamViews],
  // described in /spec/asyncapi: its domain events, and the compensation its saga may send
  // (the saga's remote steps are found from their contracts)
  aggregates: [Exam],
  sends: [ReleaseRoom],
  sagas: [ScheduleExam]
}

export default Microservice.layer(definition)
