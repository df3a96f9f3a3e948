/**
 * The saga management routes of this service, in one place (the operations work puts admin routes
 * behind authentication here):
 *
 *   GET  /sagas?status=&saga=&startedBefore=&startedAfter=&limit=   executions, oldest first
 *   GET  /sagas/:uuid             status, context, steps, participants, failure, timings
 *   GET  /sagas/:uuid/history     the execution's events (what happened, when)
 *   POST /sagas/:uuid/cancel      stop it: compensate, reject everywhere, end `compensated`
 *   POST /sagas/:uuid/retry       re-open what an `errored` execution gave up on
 *   POST /sagas/:uuid/resume      move a stuck one now (re-send what it waits for, or drive it on)
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import * as Router from "../router/Router.ts"
import { Status as ExecutionStatus } from "../saga/SagaExecution.ts"
import { SagaManager } from "../saga/SagaManager.ts"

const Params = Schema.Struct({ uuid: Schema.String.check(Schema.isUUID()) })
const Millis = Schema.FiniteFromString.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))

/** @since 0.1.0 */
export const handlers = [
  Router.rest("GET", "/sagas/:uuid", { params: Params, summary: "One saga execution" }, ({ params }) =>
    Effect.flatMap(SagaManager, (m) => m.get(params.uuid))),
  Router.rest("GET", "/sagas/:uuid/history", { params: Params, summary: "The events of one saga execution" }, ({ params }) =>
    Effect.map(Effect.flatMap(SagaManager, (m) => m.history(params.uuid)), (items) => ({ items }))),
  Router.rest("GET", "/sagas", {
    query: Schema.Struct({
      status: Schema.optional(ExecutionStatus),
      saga: Schema.optional(Schema.String),
      startedBefore: Schema.optional(Millis),
      startedAfter: Schema.optional(Millis),
      limit: Schema.optional(Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 1000 })))
    }),
    summary: "Saga executions, oldest first"
  }, ({ query }) => Effect.map(Effect.flatMap(SagaManager, (m) => m.list({ ...query })), (items) => ({ items }))),
  Router.rest("POST", "/sagas/:uuid/cancel", { params: Params, summary: "Cancel a saga execution (compensates it)" }, ({ params }) =>
    Effect.flatMap(SagaManager, (m) => m.cancel(params.uuid, { by: "rest" }))),
  Router.rest("POST", "/sagas/:uuid/retry", { params: Params, summary: "Retry what an errored execution gave up on" }, ({ params }) =>
    Effect.flatMap(SagaManager, (m) => m.retry(params.uuid))),
  Router.rest("POST", "/sagas/:uuid/resume", { params: Params, summary: "Move a stuck execution now" }, ({ params }) =>
    Effect.flatMap(SagaManager, (m) => m.resume(params.uuid)))
] as const
