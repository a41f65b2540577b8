// A Host that records what the adapter tells it, for tests.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/cuda_adapter.h"

namespace nantrace::cuda::testing {

class FakeHost : public Host {
 public:
  LaunchContext context;
  std::mutex mu;
  std::vector<KernelRecord> kernels;
  std::vector<std::pair<uint64_t, TensorStats>> results;
  std::vector<std::pair<uint64_t, std::string>> failures;
  std::map<std::string, std::string> logs;
  int log_calls = 0;

  LaunchContext launch_context() override { return context; }
  void on_kernel(KernelRecord rec) override {
    std::lock_guard<std::mutex> l(mu);
    kernels.push_back(std::move(rec));
  }
  void on_scan_result(uint64_t seq, const TensorStats& stats, std::vector<std::string>) override {
    std::lock_guard<std::mutex> l(mu);
    results.emplace_back(seq, stats);
  }
  void on_scan_failed(uint64_t seq, const std::string& reason) override {
    std::lock_guard<std::mutex> l(mu);
    failures.emplace_back(seq, reason);
  }
  void log_once(const std::string& key, const std::string& message) override {
    std::lock_guard<std::mutex> l(mu);
    ++log_calls;
    logs.emplace(key, message);
  }
};

}  // namespace nantrace::cuda::testing
