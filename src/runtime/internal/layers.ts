/** Layer helpers this version of `effect` does not ship. */
import { Cause, Effect, Function, Layer, Option } from "effect"

/** Maps a layer's typed failure; defects and interruptions pass through. */
export const mapError: {
  <E, E2>(f: (e: E) => E2): <A, R>(layer: Layer.Layer<A, E, R>) => Layer.Layer<A, E2, R>
  <A, E, R, E2>(layer: Layer.Layer<A, E, R>, f: (e: E) => E2): Layer.Layer<A, E2, R>
} = Function.dual(2, <A, E, R, E2>(layer: Layer.Layer<A, E, R>, f: (e: E) => E2): Layer.Layer<A, E2, R> =>
  Layer.catchCause(layer, (cause) => {
    const error = Cause.findErrorOption(cause)
    // Layer.catchCause's recovery layer may not fail with the original E; re-failing with the
    // cause unchanged (defect or interruption) is typed as never
    return Layer.effectContext(Option.isSome(error) ? Effect.fail(f(error.value)) : Effect.failCause(cause as Cause.Cause<never>))
  }))
