/**
 * The exam microservice (the minos setup guide's example), as one layer:
 * `effect-minos start config.yml` (or `npm start`) runs it.
 */
import { Layer } from "effect"
import * as Repository from "effect-minos/command/Repository"
import * as Microservice from "effect-minos/runtime/Microservice"
import { Exam, Exams } from "./Exam.ts"
import { ExamViews } from "./ExamView.ts"
import { handlers } from "./Handlers.ts"
import { ScheduleExam } from "./ScheduleExam.ts"

/** What the service is made of (tests build it on infrastructure of their own). */
export const definition = {
  handlers,
  services: Layer.mergeAll(Repository.layer(Exams, Exam)),
  projections: [ExamViews],
  sagas: [ScheduleExam]
}

export default Microservice.layer(definition)
