/**
 * The room aggregate of the rooms microservice: a capacity and the bookings of exams. Booking is a
 * small decider of its own on top of the entity, so the capacity rule is checked against the state
 * the event is appended to (a concurrent booking of the same room makes the append conflict and the
 * command is decided again).
 */
import { Context, Result, Schema } from "effect"
import * as Aggregate from "effect-minos/domain/Aggregate"
import * as Entity from "effect-minos/domain/Entity"
import type * as Repository from "effect-minos/command/Repository"

export const Booking = Schema.Struct({ examUuid: Schema.String, seats: Schema.Int })

export const RoomEntity = Entity.make("Room", {
  name: Schema.String.check(Schema.isBetweenLength(1, 100)),
  capacity: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100_000 })),
  bookings: Entity.collection(Booking, "examUuid")
})

type State = typeof RoomEntity.initialState
type Event = Aggregate.Aggregate.Event<typeof RoomEntity>

export class NotEnoughSeats extends Schema.TaggedError<NotEnoughSeats>()("NotEnoughSeats", { free: Schema.Int, wanted: Schema.Int }) {}

export type RoomCommand =
  | Entity.EntityCommand
  | { readonly _tag: "Book"; readonly examUuid: string; readonly seats: number }
  | { readonly _tag: "Release"; readonly examUuid: string }

export const free = (state: State): number => {
  const f = Entity.fieldsOf(state)
  return f === undefined ? 0 : f.capacity - f.bookings.reduce((n, b) => n + b.seats, 0)
}

export const bookingOf = (state: State, examUuid: string) => Entity.fieldsOf(state)?.bookings.find((b) => b.examUuid === examUuid)

const decide = (command: RoomCommand, state: State): Result.Result<ReadonlyArray<Event>, Aggregate.Aggregate.Error<typeof RoomEntity> | NotEnoughSeats> => {
  switch (command._tag) {
    case "Book": {
      const f = Entity.fieldsOf(state)
      if (f === undefined || state._tag !== "Active") return RoomEntity.decide(Entity.update({}), state)
      // booking the same exam again is answered with the booking it has
      if (bookingOf(state, command.examUuid) !== undefined) return Result.succeed([])
      if (free(state) < command.seats) return Result.fail(new NotEnoughSeats({ free: free(state), wanted: command.seats }))
      return RoomEntity.decide(Entity.update({ bookings: [...f.bookings, { examUuid: command.examUuid, seats: command.seats }] }), state)
    }
    case "Release": {
      const f = Entity.fieldsOf(state)
      if (f === undefined || state._tag !== "Active") return RoomEntity.decide(Entity.update({}), state)
      return RoomEntity.decide(Entity.update({ bookings: f.bookings.filter((b) => b.examUuid !== command.examUuid) }), state)
    }
    default:
      return RoomEntity.decide(command, state)
  }
}

export const Room: Aggregate.Aggregate<State, RoomCommand, Event, Aggregate.Aggregate.Error<typeof RoomEntity> | NotEnoughSeats> = { ...RoomEntity, decide }

export class Rooms extends Context.Service<Rooms, Repository.Repository<typeof Room>>()("rooms/Rooms") {}
