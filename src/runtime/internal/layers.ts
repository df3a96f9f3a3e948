/** Layer helpers this version of `effect` does not ship. */
import { Cause, type Context, Effect, Layer, Option } from "effect"

/** Maps a layer's typed failure; defects and interruptions pass through. */
export const mapError = <A, E, R, E2>(layer: Layer.Layer<A, E, R>, f: (e: E) => E2): Layer.Layer<A, E2, R> =>
  Layer.catchCause(layer, (cause) => {
    const error = Cause.findErrorOption(cause)
    return Layer.effectContext(
      Option.isSome(error) ? Effect.fail(f(error.value)) : Effect.failCause(cause as unknown as Cause.Cause<never>)
    ) as Layer.Layer<A, E2, never>
  }) as unknown as Layer.Layer<A, E2, R>

export type { Context }
