/**
 * A service as a user writes it against the installed package: an entity aggregate, a repository
 * and two REST routes. The package test compiles it with tsc (NodeNext) and runs it with plain node.
 */
import { Context, Effect, Layer, Schema } from "effect"
import * as Repository from "effect-minos/command/Repository"
import * as Entity from "effect-minos/domain/Entity"
import * as Router from "effect-minos/router/Router"
import * as Microservice from "effect-minos/runtime/Microservice"
import { Router as RouterNs } from "effect-minos"

const fields = { title: Schema.String.check(Schema.isBetweenLength(1, 200)) }

export const Exam = Entity.make("Exam", fields)

export class Exams extends Context.Service<Exams, Repository.Repository<typeof Exam>>()("app/Exams") {}

const Ref = Schema.Struct({ uuid: Schema.String, version: Schema.Int })

const handlers = [
  Router.rest("POST", "/exams", { body: Schema.Struct(fields), success: Ref, status: 201 }, ({ body }) =>
    Effect.flatMap(Exams, (exams) => exams.create(Entity.create(body))).pipe(Effect.map((h) => ({ uuid: h.id, version: h.version })))),
  RouterNs.rest("GET", "/exams/:uuid", { params: Schema.Struct({ uuid: Schema.String }) }, ({ params }) =>
    Effect.flatMap(Exams, (exams) => exams.get(params.uuid)).pipe(Effect.map((loaded) => ({ uuid: loaded.id, ...Entity.fieldsOf(loaded.state) }))))
] as const

export default Microservice.layer({ handlers, services: Layer.mergeAll(Repository.layer(Exams, Exam)) })
