import { defaultServerConditions } from "vite"
import { defineConfig } from "vitest/config"

const results = process.env["MINOS_TEST_RESULTS"]

// `effect-minos/…` imports (the examples, the package's own exports) resolve to src/ in this
// repository, as `customConditions` does for tsc and `--conditions` for node (package.json "exports").
const conditions = ["effect-minos-source", ...defaultServerConditions]

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    // the service suites share one PostgreSQL and one Kafka on a 2-core machine
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: results ? ["default", ["json", { outputFile: results }]] : ["default"],
    env: { KAFKAJS_NO_PARTITIONER_WARNING: "1" }
  }
})
