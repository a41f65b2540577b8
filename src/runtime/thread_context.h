// The program context of each thread: its stack of module / op / region scopes.
// Thread-local so launch callbacks (CUPTI) and checks can read it without locks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nantrace {

struct Scope {
  int32_t kind = 0;  // nt_scope_kind
  std::string name;
  std::string type;
  int64_t start_ns = 0;
};

struct ThreadContext {
  std::vector<Scope> scopes;
  uint32_t tid = 0;
  // Innermost scope of a kind, or nullptr.
  const Scope* innermost(int32_t kind) const {
    for (auto it = scopes.rbegin(); it != scopes.rend(); ++it)
      if (it->kind == kind) return &*it;
    return nullptr;
  }
};

ThreadContext& this_thread_context();
int64_t now_ns();  // CLOCK_REALTIME, the clock CUPTI uses on Linux

}  // namespace nantrace
