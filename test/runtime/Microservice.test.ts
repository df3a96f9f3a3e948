import { assert, describe, it } from "@effect/vitest"
import * as Microservice from "../../src/runtime/Microservice.ts"

describe("Microservice", () => {
  it("keeps the in-process broker's log next to the LMDB storage, else under ./data", () => {
    const service = { name: "exam", aggregate: undefined, entry: undefined }
    assert.strictEqual(Microservice.memoryBrokerPath({ service, storage: { backend: "lmdb", path: "./data/exam/", mapSize: 1 } }), "./data/exam-broker")
    assert.strictEqual(
      Microservice.memoryBrokerPath({ service, storage: { backend: "postgres", postgres: {} as never } }),
      "./data/exam-broker"
    )
  })
})
