/**
 * How the tests run `bin/effect-minos.js`: from the TypeScript sources (the package's
 * `effect-minos-source` export condition, loaded by tsx), so they need no build.
 */
export const binArgs: ReadonlyArray<string> = ["--conditions=effect-minos-source", "--import", "tsx", "bin/effect-minos.js"]
