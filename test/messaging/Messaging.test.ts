import { Layer } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as MinosConfig from "../../src/config/MinosConfig.ts"
import * as Microservice from "../../src/runtime/Microservice.ts"
import { describeKafka, describePostgres, freshSchema, kafkaBrokers, settings } from "../support/Services.ts"
import { suite } from "./MessagingSuite.ts"

const embedded = (name: string) =>
  Microservice.layerInfrastructure.pipe(
    Layer.provideMerge(MinosConfig.layerSettings(settings({ name, storage: { backend: "lmdb", path: mkdtempSync(join(tmpdir(), "msg-")), mapSize: 256 * 1024 * 1024 } })))
  )

suite("in-process broker + LMDB", embedded("svc"))

describePostgres("PostgreSQL", () => {
  describeKafka("Kafka", () => {
    const name = `svc${Date.now().toString(36)}`
    suite("Kafka + PostgreSQL", Microservice.layerInfrastructure.pipe(
      Layer.provideMerge(MinosConfig.layerSettings(settings({ name, storage: { backend: "postgres", postgres: freshSchema("msg") }, broker: { backend: "kafka", brokers: kafkaBrokers, clientId: name } })))
    ), `.${name}`)
  })
})
