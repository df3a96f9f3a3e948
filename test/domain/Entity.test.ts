import { assert, describe, it } from "@effect/vitest"
import * as Aggregate from "../../src/domain/Aggregate.ts"
import * as Entity from "../../src/domain/Entity.ts"
import * as AggregateSpec from "../../src/testing/AggregateSpec.ts"
import { Counter, Exam, examFields, Room, WouldGoNegative } from "../fixtures/Domain.ts"

const exam = AggregateSpec.of(Exam)
const created = { _tag: "ExamCreated", fields: { ...examFields } } as const

describe("Entity", () => {
  describe("create", () => {
    it("produces {Name}Created with every field", () => {
      const state = exam.given([]).when(Entity.create(examFields)).then([created])
      assert.deepStrictEqual(Entity.fieldsOf(state), examFields)
    })

    it("refuses a caller-chosen uuid or version", () => {
      for (const key of ["uuid", "version", "createdAt"]) {
        const error = exam.given([]).when(Entity.create({ ...examFields, [key]: "x" })).thenFails("InvalidCommand")
        assert.strictEqual((error as { field: string }).field, key)
      }
    })

    it("names the invalid field", () => {
      const error = exam.given([]).when(Entity.create({ ...examFields, durationMinutes: 0 })).thenFails("InvalidCommand")
      assert.strictEqual((error as { field: string }).field, "durationMinutes")
      const missing = exam.given([]).when(Entity.create({ title: "x" })).thenFails("InvalidCommand")
      assert.strictEqual((missing as { field: string }).field, "subject")
      const extra = exam.given([]).when(Entity.create({ ...examFields, colour: "red" })).thenFails("InvalidCommand")
      assert.strictEqual((extra as { field: string }).field, "colour")
    })

    it("refuses a second create", () => {
      exam.given([created]).when(Entity.create(examFields)).thenFails("AlreadyExists")
    })
  })

  describe("update", () => {
    it("carries only the changed fields", () => {
      const state = exam.given([created]).when(Entity.update({ title: "Algebra II", subject: "math" })).then([
        { _tag: "ExamUpdated", diff: [{ name: "title", value: "Algebra II" }] }
      ])
      assert.strictEqual(Entity.fieldsOf(state)?.title, "Algebra II")
    })

    it("no change → no event", () => {
      exam.given([created]).when(Entity.update({ title: "Algebra" })).thenNothingHappened()
    })

    it("null unsets an optional field; nested values diff as a whole", () => {
      const withRoom = { _tag: "ExamUpdated", diff: [{ name: "roomUuid", value: "r1" }] } as const
      exam.given([created, withRoom]).when(Entity.update({ roomUuid: null })).then([{ _tag: "ExamUpdated", diff: [{ name: "roomUuid" }] }])
      exam.given([created]).when(Entity.update({ meta: { level: 2, tags: ["a"] } })).then([
        { _tag: "ExamUpdated", diff: [{ name: "meta", value: { level: 2, tags: ["a"] } }] }
      ])
    })

    it("validates the merged document", () => {
      const e = exam.given([created]).when(Entity.update({ status: "archived" })).thenFails("InvalidCommand")
      assert.strictEqual((e as { field: string }).field, "status")
      exam.given([created]).when(Entity.update({ nope: 1 })).thenFails("InvalidCommand")
      exam.given([created]).when(Entity.update({ version: 3 })).thenFails("InvalidCommand")
    })

    it("an absent or deleted entity cannot be updated", () => {
      exam.given([]).when(Entity.update({ title: "x" })).thenFails("NotFound")
      exam.given([created, { _tag: "ExamDeleted" }]).when(Entity.update({ title: "x" })).thenFails("AlreadyDeleted")
    })

    it("decomposes into per-field publications", () => {
      const event = { _tag: "ExamUpdated", diff: [{ name: "title", value: "B" }, { name: "seats", value: 3 }] } as const
      const topics = Exam.publications(event).map((p) => p.topic)
      assert.deepStrictEqual(topics, ["ExamUpdated", "ExamUpdated.title", "ExamUpdated.seats"])
      assert.deepStrictEqual(Exam.publications(event)[1]!.content, { _tag: "ExamUpdated", diff: [{ name: "title", value: "B" }] })
    })
  })

  describe("collections", () => {
    const room = AggregateSpec.of(Room)
    const opened = { _tag: "RoomCreated", fields: { name: "A", capacity: 30, bookings: [] } } as const

    it("diffs items by key into create/update/delete", () => {
      const s1 = room.given([opened]).when(Entity.update({ bookings: [{ examUuid: "e1", seats: 10 }] })).then([
        { _tag: "RoomUpdated", diff: [{ name: "bookings", action: "create", value: { examUuid: "e1", seats: 10 } }] }
      ])
      const history = [opened, { _tag: "RoomUpdated", diff: [{ name: "bookings", action: "create", value: { examUuid: "e1", seats: 10 } }] }] as const
      assert.deepStrictEqual(Entity.fieldsOf(s1)?.bookings, [{ examUuid: "e1", seats: 10 }])
      const s2 = room.given(history).when(Entity.update({ bookings: [{ examUuid: "e1", seats: 12 }, { examUuid: "e2", seats: 1 }] })).then([
        {
          _tag: "RoomUpdated",
          diff: [
            { name: "bookings", action: "update", value: { examUuid: "e1", seats: 12 } },
            { name: "bookings", action: "create", value: { examUuid: "e2", seats: 1 } }
          ]
        }
      ])
      assert.strictEqual(Entity.fieldsOf(s2)?.bookings.length, 2)
      room.given(history).when(Entity.update({ bookings: [] })).then([
        { _tag: "RoomUpdated", diff: [{ name: "bookings", action: "delete", value: { examUuid: "e1", seats: 10 } }] }
      ])
    })

    it("publishes {Name}Updated.{field}.{action}", () => {
      const event = { _tag: "RoomUpdated", diff: [{ name: "bookings", action: "create", value: { examUuid: "e1", seats: 1 } }] } as const
      assert.deepStrictEqual(Room.publications(event).map((p) => p.topic), ["RoomUpdated", "RoomUpdated.bookings.create"])
    })
  })

  describe("delete", () => {
    it("produces {Name}Deleted once", () => {
      const state = exam.given([created]).when(Entity.delete).then([{ _tag: "ExamDeleted" }])
      assert.strictEqual(state._tag, "Deleted")
      exam.given([created, { _tag: "ExamDeleted" }]).when(Entity.delete).thenFails("AlreadyDeleted")
      exam.given([]).when(Entity.delete).thenFails("NotFound")
    })
  })

  it("round-trips its snapshot", () => {
    const state = Aggregate.replay(Exam, [created])
    const { deleted, document } = Exam.snapshot.encode(state)
    assert.isFalse(deleted)
    assert.deepStrictEqual(Exam.snapshot.decode(document, deleted), state)
  })
})

describe("Aggregate (hand-written decider)", () => {
  const counter = AggregateSpec.of(Counter)

  it("custom events work like entity events", () => {
    counter.given([{ _tag: "CounterOpened", start: 1 }]).when({ _tag: "Publish" }).then([{ _tag: "CounterPublished" }])
    counter.given([{ _tag: "CounterOpened", start: 1 }, { _tag: "CounterPublished" }]).when({ _tag: "Publish" }).thenNothingHappened()
    assert.deepStrictEqual(Counter.publications({ _tag: "CounterPublished" }), [{ topic: "CounterPublished", content: { _tag: "CounterPublished" } }])
  })

  it("domain errors come back typed", () => {
    const e = counter.given([{ _tag: "CounterOpened", start: 1 }]).when({ _tag: "Change", by: -2 }).thenFails(WouldGoNegative)
    assert.strictEqual(e.by, -2)
  })

  it("the kit reports a wrong expectation", () => {
    assert.throws(() => counter.given([]).when({ _tag: "Open", start: 1 }).then([]))
    assert.throws(() => counter.given([]).when({ _tag: "Open", start: 1 }).thenFails("WouldGoNegative"))
    assert.throws(() => counter.given([]).when({ _tag: "Open", start: 1 }).thenNothingHappened())
  })

  it("refuses a name that cannot prefix topics", () => {
    assert.throws(() => Aggregate.make({ ...Counter, name: "bad name", state: Counter.snapshot.document as never, decide: Counter.decide }))
  })
})
