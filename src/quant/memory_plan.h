// How a (quantized) model fits on accelerators under tensor parallelism, the way vLLM shards it:
// q/k/v/gate/up split by output rows, o/down by input columns, embeddings and lm_head by vocab
// rows, norms replicated; K/V heads split across devices but never below one head per device.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "arch/model_config.h"
#include "base/status.h"
#include "quant/plan.h"

namespace rtnq {

struct DeviceSpec {
  int count = 1;
  std::string name;        // "H100-80GB"
  uint64_t bytes = 0;      // usable memory of one device as the driver reports it
};

// "4xH100-80GB", "H200", "2xA100-40GB", "8x24GB": a known device name or a size in GB/GiB.
Result<DeviceSpec> ParseDeviceSpec(std::string_view text);
std::vector<std::string> KnownDeviceNames();

struct FitOptions {
  double memory_utilization = 0.90;     // vLLM's gpu_memory_utilization default
  uint64_t reserve_bytes = 2ull << 30;  // per device: CUDA context, activations, graphs (estimate)
  int kv_bytes_per_element = 2;         // bf16 KV cache; 1 for fp8
};

struct FitResult {
  DeviceSpec devices;
  uint64_t weight_bytes_total = 0;
  uint64_t weight_bytes_per_device = 0;
  uint64_t budget_bytes_per_device = 0;  // utilization * memory - reserve
  int64_t kv_heads_per_device = 0;
  uint64_t kv_bytes_per_token = 0;       // per device, all layers, K and V
  bool weights_fit = false;
  int64_t max_kv_tokens = 0;             // tokens of KV cache that fit per device (shared by the batch)
  int64_t max_context = 0;               // min(max_kv_tokens, max_position_embeddings)
  struct Row {
    int64_t context;
    int64_t max_batch;
  };
  std::vector<Row> batch_at_context;     // largest batch for a few context lengths
};

Result<FitResult> FitOnDevices(const ModelConfig& config, const CompiledPlan& plan,
                               const DeviceSpec& devices, const FitOptions& options = {});

}  // namespace rtnq
