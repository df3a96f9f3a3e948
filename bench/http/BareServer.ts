/**
 * The HTTP benchmark's baseline: a bare `node:http` server doing the exam service's storage work on
 * the same backend, with none of the framework's HTTP stack. `POST /exams` decodes the JSON body with
 * the service's own `CreateExam` schema and calls the same `Repository.create` (events + snapshot +
 * outbox row, as the service does); `GET /exams/:uuid` calls `Repository.get`. No router, no
 * middleware, no logging, no relay or consumer.
 *
 *   node --import tsx bench/http/BareServer.ts <port> lmdb <path>
 *   node --import tsx bench/http/BareServer.ts <port> postgres <schema> [maxConnections]
 *
 * Prints `ready` on stdout once it listens.
 */
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { createServer } from "node:http"
import * as Repository from "../../src/command/Repository.ts"
import * as Entity from "../../src/domain/Entity.ts"
import { isUuid } from "../../src/internal/Ids.ts"
import * as Lmdb from "../../src/lmdb/Lmdb.ts"
import * as Postgres from "../../src/postgres/Postgres.ts"
import { Exam } from "../../examples/exam/Exam.ts"
import { CreateExam } from "../../examples/exam/Handlers.ts"
import { pgSettings } from "../StorageBench.ts"

const [portArg, backend, where, maxConnections] = process.argv.slice(2)
const storage = backend === "lmdb"
  ? Lmdb.layer({ path: where!, mapSize: 2 * 1024 ** 3 })
  : Postgres.layerStorage({ ...pgSettings(where!), maxConnections: Number(maxConnections ?? 10) })
const runtime = ManagedRuntime.make(storage as Layer.Layer<Layer.Success<typeof storage>, unknown>)
const exams = await runtime.runPromise(Repository.make(Exam))
const decodeCreate = Schema.decodeUnknownSync(CreateExam)

const send = (res: import("node:http").ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body)
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
  res.end(text)
}

const server = createServer((req, res) => {
  const url = req.url ?? "/"
  if (req.method === "POST" && url === "/exams") {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      let input: typeof CreateExam.Type
      try {
        input = decodeCreate(JSON.parse(Buffer.concat(chunks).toString("utf8")))
      } catch (e) {
        return send(res, 400, { error: "BadRequest", message: String(e) })
      }
      runtime.runPromise(exams.create(Entity.create({ ...input, status: "draft" }))).then(
        (h) => send(res, 201, { uuid: h.id, version: h.version }),
        (e) => send(res, 500, { error: "InternalError", message: String(e) })
      )
    })
    return
  }
  if (req.method === "GET" && url.startsWith("/exams/")) {
    const uuid = url.slice("/exams/".length)
    if (!isUuid(uuid)) return send(res, 400, { error: "BadRequest" })
    runtime.runPromise(Effect.result(exams.get(uuid))).then(
      (r) => {
        if (r._tag === "Failure") return send(res, 404, { error: "NotFound" })
        const l = r.success
        send(res, 200, {
          uuid: l.id,
          version: l.version,
          createdAt: new Date(l.createdAt ?? 0).toISOString(),
          updatedAt: new Date(l.updatedAt ?? 0).toISOString(),
          ...Entity.fieldsOf(l.state)
        })
      },
      (e) => send(res, 500, { error: "InternalError", message: String(e) })
    )
    return
  }
  send(res, 404, { error: "RouteNotFound" })
})
server.keepAliveTimeout = 30_000
server.listen(Number(portArg), "127.0.0.1", () => console.log("ready"))
const stop = () => server.close(() => void runtime.dispose().then(() => process.exit(0)))
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
