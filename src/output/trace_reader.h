// Reading Chrome traces as nantrace writes them (and as a killed writer leaves them), event
// by event, without building a document of the whole file; and rewriting one event's
// top-level members in place. Used by the merge; fuzzed (tests/fuzz/fuzz_trace_reader.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace nantrace {

struct TraceReadInfo {
  uint64_t events = 0;         // complete events passed to the callback
  bool closed = false;         // the closing "]" (and "}" of the object form) was present
  bool object_form = false;    // {"traceEvents": [...], ...} rather than a bare array
  uint64_t cut_off_bytes = 0;  // bytes of an incomplete last event that were dropped
  nlohmann::json header = nlohmann::json::object();  // the object form's other members
};

// Reads a Chrome trace event by event, tolerating what a killed writer leaves: no closing
// "]", a trailing ",", a last event cut off part-way (dropped). Each complete event is
// checked to be a valid JSON object and handed over as its exact text (numbers keep their
// digits). Both forms are read: the array form, and the object form {"traceEvents": [...]}
// whose other members (small: metadata) land in info->header. false + *error (one line: what
// and at which byte) for an empty file, text that is not a trace, or a corrupted event
// before the end.
bool read_trace_events(std::string_view text, const std::function<void(std::string_view)>& on_event,
                       TraceReadInfo* info, std::string* error);

// event_json with its top-level members rewritten: `edit` gets each member's key (unescaped)
// and raw value text, and returns the new value text or nullopt to keep it. Keys in `add`
// that the event lacks are added right after the opening brace (value texts as given). The
// rest of the text is unchanged. event_json must be one JSON object (as read_trace_events
// gives).
std::string rewrite_members(std::string_view event_json,
                            const std::function<std::optional<std::string>(const std::string&, std::string_view)>& edit,
                            const std::vector<std::pair<std::string, std::string>>& add = {});

// event_json with its top-level "pid" value replaced by pid (added when absent).
std::string with_pid(std::string_view event_json, int64_t pid);

}  // namespace nantrace
