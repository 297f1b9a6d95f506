// rtnq bench gemm | e2e: kernel and end-to-end speed against the DRAM bandwidth measured in the
// same run.
#include "cmd_bench.h"
#include "command.h"

namespace rtnq::cli {

void RegisterBench(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks: matmul kernels (gemm) and whole models (e2e)");
  bench->require_subcommand(1);
  AddBenchGemm(bench);
  AddBenchE2e(bench);
}

}  // namespace rtnq::cli
