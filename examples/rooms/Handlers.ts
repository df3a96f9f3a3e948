/**
 * The rooms microservice: rooms over REST, and the `BookRoom` / `ReleaseRoom` commands the exam
 * service's scheduling saga sends.
 */
import { Effect, Option, Schema, Stream } from "effect"
import * as Entity from "effect-minos/domain/Entity"
import * as Router from "effect-minos/router/Router"
import * as Condition from "effect-minos/query/Condition"
import { BookRoom, NoRoomAvailable, ReleaseRoom } from "./Contracts.ts"
import { bookingOf, free, Rooms } from "./Room.ts"

const Uuid = Schema.String.check(Schema.isUUID())

export { NoRoomAvailable }

const CreateRoom = Schema.Struct({ name: Schema.String.check(Schema.isBetweenLength(1, 100)), capacity: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100_000 })) })

/** Books the first room with enough free seats; the same exam booked twice gets the same room. */
export const bookRoom = ({ examUuid, seats }: { readonly examUuid: string; readonly seats: number }) =>
  Effect.gen(function*() {
    const rooms = yield* Rooms
    const all = Array.from(yield* Stream.runCollect(rooms.find({ condition: Condition.TRUE, ordering: Condition.asc("name") })))
    const existing = all.find((r) => bookingOf(r.state, examUuid) !== undefined)
    if (existing !== undefined) return { roomUuid: existing.id }
    for (const room of all) {
      if (free(room.state) < seats) continue
      const booked = yield* rooms.handle(room.id, { _tag: "Book", examUuid, seats }).pipe(
        Effect.map(() => Option.some(room.id)),
        // filled up meanwhile: try the next room
        Effect.catchTag("NotEnoughSeats", () => Effect.succeed(Option.none<string>()))
      )
      if (Option.isSome(booked)) return { roomUuid: booked.value }
    }
    return yield* Effect.fail(new NoRoomAvailable({ seats, message: `No room has ${seats} free seat(s)` }))
  })

/** Frees the exam's booking wherever it is; releasing twice is fine. */
export const releaseRoom = ({ examUuid }: { readonly examUuid: string }) =>
  Effect.gen(function*() {
    const rooms = yield* Rooms
    const all = yield* Stream.runCollect(rooms.find({ condition: Condition.TRUE }))
    for (const room of all) {
      if (bookingOf(room.state, examUuid) !== undefined) yield* rooms.handle(room.id, { _tag: "Release", examUuid })
    }
    return { released: true }
  })

const RoomBody = Schema.Struct({
  uuid: Schema.String,
  version: Schema.Int,
  name: Schema.String,
  capacity: Schema.Int,
  free: Schema.Int,
  bookings: Schema.Array(Schema.Struct({ examUuid: Schema.String, seats: Schema.Int }))
})

export const handlers = [
  Router.rest("POST", "/rooms", { body: CreateRoom, status: 201, summary: "Create a room" }, ({ body }) =>
    Effect.flatMap(Rooms, (rooms) => rooms.create(Entity.create({ ...body, bookings: [] }))).pipe(Effect.map((h) => ({ uuid: h.id, version: h.version })))),
  Router.rest("GET", "/rooms/:uuid", { params: Schema.Struct({ uuid: Uuid }), success: RoomBody, summary: "One room" }, ({ params }) =>
    Effect.flatMap(Rooms, (rooms) => rooms.get(params.uuid)).pipe(Effect.map((r) => {
      const f = Entity.fieldsOf(r.state)!
      return { uuid: r.id, version: r.version, name: f.name, capacity: f.capacity, free: free(r.state), bookings: f.bookings }
    }))),
  Router.command(BookRoom, bookRoom),
  Router.command(ReleaseRoom, releaseRoom)
] as const
