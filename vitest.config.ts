import { defineConfig } from "vitest/config"

const results = process.env["MINOS_TEST_RESULTS"]

export default defineConfig({
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
