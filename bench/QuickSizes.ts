/**
 * Imported first by bench/main.ts: in `--quick` mode, the sizes other bench modules read from the
 * environment when they load are made small (unless set explicitly).
 */
if (process.argv.includes("--quick")) process.env["MINOS_BENCH_REBUILD_EVENTS"] ??= "10000"
