/**
 * The "ours" side of the storage benchmarks, the same on every backend: single-event appends, a batch
 * append of 1,000 events, and the whole command path (Repository.create of the fixture Exam).
 */
import { Effect } from "effect"
import * as Entity from "../src/domain/Entity.ts"
import { EventStore } from "../src/eventstore/EventStore.ts"
import * as Repository from "../src/command/Repository.ts"
import { Exam, examFields } from "../test/fixtures/Domain.ts"
import { concurrently, type Measure } from "./Harness.ts"

export const createdData = { fields: examFields }

/** The events of one batch append. */
export const batchEvents = (n: number) => Array.from({ length: n }, (_, i) => ({ type: "ExamUpdated", data: { diff: [{ name: "seats", value: i }] } }))

export const ourStorage = Effect.gen(function*() {
  const store = yield* EventStore
  const exams = yield* Repository.make(Exam, { publish: true })
  const uuid = () => crypto.randomUUID()
  return {
    append: (concurrency: number): Measure => ({
      run: (ops) =>
        concurrently(ops, concurrency, () =>
          store.append({ aggregate: "Exam", aggregateId: uuid(), expectedVersion: 0, now: Date.now(), events: [{ type: "ExamCreated", data: createdData }] }))
    }),
    batch: {
      run: (ops) =>
        Effect.gen(function*() {
          for (let done = 0; done < ops; done += 1000) {
            yield* store.append({ aggregate: "Exam", aggregateId: uuid(), expectedVersion: 0, now: Date.now(), events: batchEvents(1000) })
          }
        })
    } satisfies Measure,
    command: (concurrency: number): Measure => ({
      run: (ops) => concurrently(ops, concurrency, () => exams.create(Entity.create(examFields)))
    })
  }
})
