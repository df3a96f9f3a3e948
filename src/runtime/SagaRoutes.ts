/**
 * Built-in routes for the saga executions this service coordinates:
 *
 *   GET /sagas/:uuid            status, context, steps and participants of one execution
 *   GET /sagas?status=&saga=    executions, oldest first
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import * as Router from "../router/Router.ts"
import { SagaManager } from "../saga/SagaManager.ts"
import { Status as ExecutionStatus } from "../saga/SagaExecution.ts"

/** @since 0.1.0 */
export const handlers = [
  Router.rest("GET", "/sagas/:uuid", { params: Schema.Struct({ uuid: Schema.String.check(Schema.isUUID()) }), summary: "One saga execution" }, ({ params }) =>
    Effect.flatMap(SagaManager, (m) => m.get(params.uuid))),
  Router.rest("GET", "/sagas", {
    query: Schema.Struct({
      status: Schema.optional(ExecutionStatus),
      saga: Schema.optional(Schema.String),
      limit: Schema.optional(Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 1000 })))
    }),
    summary: "Saga executions"
  }, ({ query }) => Effect.map(Effect.flatMap(SagaManager, (m) => m.list({ ...query })), (items) => ({ items })))
] as const
