/** The retry schedules the engines share. */
import { type Duration, Schedule } from "effect"

/** Doubling delays from `base`, never longer than `max`; forever. */
export const cappedExponential = (base: Duration.Input, max: Duration.Input): Schedule.Schedule<Duration.Duration> =>
  Schedule.min([Schedule.exponential(base), Schedule.spaced(max)])
