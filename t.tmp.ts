import { Effect, Schema } from "effect"
import * as Router from "./src/router/Router.ts"
import * as Api from "./src/http/Api.ts"
const rest = [Router.rest("GET", "/exams/:id", { params: Schema.Struct({ id: Schema.String }) }, () => Effect.void), Router.rest("DELETE", "/exams/:id", { status: 204 }, () => Effect.void)] as any
const doc = Api.openApi({ rest }, { title: "exam" })
console.log(Object.keys(doc.paths), JSON.stringify(doc.paths))
