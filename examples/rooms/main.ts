/** The rooms microservice: `effect-minos start examples/rooms/config.yml`. */
import * as Repository from "effect-minos/command/Repository"
import * as Microservice from "effect-minos/runtime/Microservice"
import { handlers } from "./Handlers.ts"
import { Room, Rooms } from "./Room.ts"

export default Microservice.layer({
  handlers,
  services: Repository.layer(Rooms, Room),
  aggregates: [Room]
})
