#include "output/trace_reader.h"

#include <cstdio>
#include <vector>

#include "output/strict_json.h"

namespace nantrace {

namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

// End (index of the closing '}' or ']') of the JSON container starting at s[begin], or npos
// when the text ends first. Strings are skipped so brackets inside names do not count.
size_t container_end(std::string_view s, size_t begin) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = begin; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') ++depth;
    else if ((c == '}' || c == ']') && --depth == 0) return i;
  }
  return std::string_view::npos;
}

// End (one past) of the JSON string starting at s[begin] == '"', or npos.
size_t string_end(std::string_view s, size_t begin) {
  bool escaped = false;
  for (size_t i = begin + 1; i < s.size(); ++i) {
    if (escaped) escaped = false;
    else if (s[i] == '\\') escaped = true;
    else if (s[i] == '"') return i + 1;
  }
  return std::string_view::npos;
}

// End (one past) of any JSON value starting at s[begin], or npos when the text ends first.
size_t value_end(std::string_view s, size_t begin) {
  if (begin >= s.size()) return std::string_view::npos;
  const char c = s[begin];
  if (c == '"') return string_end(s, begin);
  if (c == '{' || c == '[') {
    const size_t e = container_end(s, begin);
    return e == std::string_view::npos ? e : e + 1;
  }
  size_t i = begin;
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_space(s[i])) ++i;
  return i == s.size() ? std::string_view::npos : i;
}

std::string byte_at(size_t i, size_t size) {
  return "at byte " + std::to_string(i) + " of " + std::to_string(size);
}

std::string char_text(char c) {
  if (c >= 0x20 && c < 0x7f) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", unsigned(static_cast<unsigned char>(c)));
  return buf;
}

struct ArrayResult {
  bool ok = true;
  bool closed = false;
  size_t after = 0;  // index after the closing ']' when closed
};

// The events of an array whose '[' is at text[open].
ArrayResult read_array(std::string_view text, size_t open, const std::function<void(std::string_view)>& on_event,
                       TraceReadInfo& inf, std::string* error) {
  ArrayResult r;
  auto fail = [&](const std::string& what) {
    if (error) *error = what;
    r.ok = false;
    return r;
  };
  size_t i = skip_space(text, open + 1);
  bool need_separator = false;
  while (i < text.size()) {
    const char c = text[i];
    if (c == ']') {
      r.closed = true;
      r.after = i + 1;
      return r;
    }
    if (need_separator) {
      if (c != ',')
        return fail("expected ',' or ']' between events, found " + char_text(c) + " " + byte_at(i, text.size()));
      i = skip_space(text, i + 1);
      need_separator = false;
      continue;
    }
    if (c != '{')
      return fail("event " + std::to_string(inf.events + 1) + ": expected '{', found " + char_text(c) + " " +
                  byte_at(i, text.size()));
    const size_t end = container_end(text, i);
    if (end == std::string_view::npos) {
      // A writer killed part-way through an event: what came before it still counts.
      inf.cut_off_bytes = text.size() - i;
      return r;
    }
    const std::string_view event = text.substr(i, end + 1 - i);
    if (!nlohmann::json::accept(event.begin(), event.end()))
      return fail("event " + std::to_string(inf.events + 1) + " " + byte_at(i, text.size()) + " is not valid JSON");
    on_event(event);
    ++inf.events;
    i = skip_space(text, end + 1);
    need_separator = true;
  }
  return r;  // no closing ']': a killed or still running writer
}

}  // namespace

bool read_trace_events(std::string_view text, const std::function<void(std::string_view)>& on_event,
                       TraceReadInfo* info, std::string* error) {
  TraceReadInfo local;
  TraceReadInfo& inf = info ? *info : local;
  inf = TraceReadInfo{};
  auto fail = [&](const std::string& what) {
    if (error) *error = what;
    return false;
  };
  size_t i = skip_space(text, 0);
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") i = skip_space(text, 3);
  if (i >= text.size()) return fail(text.empty() ? "empty file" : "holds only white space");

  if (text[i] == '[') {
    const ArrayResult r = read_array(text, i, on_event, inf, error);
    if (!r.ok) return false;
    if (r.closed) {
      const size_t after = skip_space(text, r.after);
      if (after < text.size())
        return fail("unexpected " + char_text(text[after]) + " after the closing ']' " + byte_at(after, text.size()));
      inf.closed = true;
    }
    return true;
  }
  if (text[i] != '{')
    return fail("not a Chrome trace: expected '[' or '{', found " + char_text(text[i]) + " " + byte_at(i, text.size()));

  // Object form: members one by one; "traceEvents" streamed, the others kept as the header.
  inf.object_form = true;
  bool seen_events = false;
  i = skip_space(text, i + 1);
  bool need_separator = false;
  while (i < text.size()) {
    if (text[i] == '}') {
      const size_t after = skip_space(text, i + 1);
      if (after < text.size())
        return fail("unexpected " + char_text(text[after]) + " after the closing '}' " + byte_at(after, text.size()));
      if (!seen_events) return fail("not a Chrome trace: an object without a \"traceEvents\" array");
      inf.closed = true;
      return true;
    }
    if (need_separator) {
      if (text[i] != ',')
        return fail("expected ',' or '}' between members, found " + char_text(text[i]) + " " + byte_at(i, text.size()));
      i = skip_space(text, i + 1);
      need_separator = false;
      continue;
    }
    if (text[i] != '"')
      return fail("expected a member name, found " + char_text(text[i]) + " " + byte_at(i, text.size()));
    const size_t key_end = string_end(text, i);
    if (key_end == std::string_view::npos) break;
    const nlohmann::json key = nlohmann::json::parse(text.substr(i, key_end - i), nullptr, false);
    if (!key.is_string()) return fail("a member name " + byte_at(i, text.size()) + " is not valid JSON");
    i = skip_space(text, key_end);
    if (i >= text.size()) break;
    if (text[i] != ':') return fail("expected ':' after a member name, found " + char_text(text[i]) + " " + byte_at(i, text.size()));
    i = skip_space(text, i + 1);
    if (i >= text.size()) break;
    if (key.get<std::string>() == "traceEvents") {
      if (text[i] != '[') return fail("not a Chrome trace: \"traceEvents\" is not an array " + byte_at(i, text.size()));
      seen_events = true;
      const ArrayResult r = read_array(text, i, on_event, inf, error);
      if (!r.ok) return false;
      if (!r.closed) return true;  // cut off inside the events: what came before counts
      i = skip_space(text, r.after);
      need_separator = true;
      continue;
    }
    const size_t end = value_end(text, i);
    if (end == std::string_view::npos) break;
    const nlohmann::json v = nlohmann::json::parse(text.substr(i, end - i), nullptr, false);
    if (v.is_discarded())
      return fail("the value of " + strict_json::quote(key.get<std::string>()).substr(0, 80) + " " +
                  byte_at(i, text.size()) + " is not valid JSON");
    inf.header[key.get<std::string>()] = v;
    i = skip_space(text, end);
    need_separator = true;
  }
  if (!seen_events) return fail("not a Chrome trace: the object ends before a \"traceEvents\" array");
  return true;
}

std::string rewrite_members(std::string_view ev,
                            const std::function<std::optional<std::string>(const std::string&, std::string_view)>& edit,
                            const std::vector<std::pair<std::string, std::string>>& add) {
  const size_t open = ev.find('{');
  if (open == std::string_view::npos) return std::string(ev);
  struct Span {
    size_t begin, end;
    std::string text;
  };
  std::vector<Span> spans;
  std::vector<std::string> seen;
  size_t i = skip_space(ev, open + 1);
  while (i < ev.size() && ev[i] != '}') {
    if (ev[i] == ',') {
      i = skip_space(ev, i + 1);
      continue;
    }
    if (ev[i] != '"') break;
    const size_t key_end = string_end(ev, i);
    if (key_end == std::string_view::npos) break;
    std::string key;
    const std::string_view raw = ev.substr(i, key_end - i);
    if (raw.find('\\') == std::string_view::npos) {
      key = std::string(raw.substr(1, raw.size() - 2));
    } else {  // "p\u0069d" is "pid"
      const nlohmann::json k = nlohmann::json::parse(raw, nullptr, false);
      if (k.is_string()) key = k.get<std::string>();
    }
    i = skip_space(ev, key_end);
    if (i >= ev.size() || ev[i] != ':') break;
    const size_t vb = skip_space(ev, i + 1);
    const size_t ve = value_end(ev, vb);
    if (ve == std::string_view::npos) break;
    seen.push_back(key);
    if (auto replaced = edit(key, ev.substr(vb, ve - vb))) spans.push_back({vb, ve, *replaced});
    i = skip_space(ev, ve);
  }
  std::string out(ev.substr(0, open + 1));
  std::string added;
  for (const auto& [k, v] : add) {
    bool present = false;
    for (const auto& s : seen) present |= s == k;
    if (!present) added += (added.empty() ? "" : ",") + strict_json::quote(k) + ":" + v;
  }
  if (!added.empty()) {
    out += added;
    const size_t first = skip_space(ev, open + 1);
    if (first < ev.size() && ev[first] != '}') out += ",";
  }
  size_t at = open + 1;
  for (const auto& s : spans) {
    out.append(ev.substr(at, s.begin - at));
    out += s.text;
    at = s.end;
  }
  out.append(ev.substr(at));
  return out;
}

std::string with_pid(std::string_view ev, int64_t pid) {
  const std::string value = std::to_string(pid);
  return rewrite_members(
      ev,
      [&](const std::string& key, std::string_view) -> std::optional<std::string> {
        if (key == "pid") return value;  // every "pid" member: a duplicate key would win in some readers
        return std::nullopt;
      },
      {{"pid", value}});
}

}  // namespace nantrace
