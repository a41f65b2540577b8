// Secret redaction: a few regular expressions for the shapes secrets come in, plus a scan for
// long random-looking runs. Inputs are short (argv, config values), so clarity beats speed.
#include "core/redact.h"

#include <cctype>
#include <regex>

namespace nantrace {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// Replaces every match of re by what make(match) returns.
template <class F>
std::string replace_each(const std::string& text, const std::regex& re, F make) {
  std::string out;
  auto last = text.cbegin();
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) {
    const std::smatch& m = *it;
    out.append(last, m[0].first);
    out += make(m);
    last = m[0].second;
  }
  out.append(last, text.cend());
  return out;
}

// "https://user:pass@host" -> "https://user:[REDACTED]@host"
std::string redact_url_credentials(const std::string& text) {
  static const std::regex* re = new std::regex(  // never destroyed: used at exit
      R"(([A-Za-z][A-Za-z0-9+.\-]*://)([^\s/:@]+):([^\s/@]+)@)");
  return replace_each(text, *re, [](const std::smatch& m) {
    return m[1].str() + m[2].str() + ":" + kRedacted + "@";
  });
}

// "Authorization: Bearer XXX" -> "Authorization: Bearer [REDACTED]"
std::string redact_auth_schemes(const std::string& text) {
  static const std::regex* re = new std::regex(R"(\b(Bearer|Basic)\s+([A-Za-z0-9._~+/=\-]{8,}))", std::regex::icase);
  return replace_each(text, *re, [](const std::smatch& m) { return m[1].str() + " " + kRedacted; });
}

bool already_redacted(const std::string& value) { return value.rfind("[REDACTED", 0) == 0; }

// key=value, key: value, "key": "value", with a secret-named key. A key that is not secret
// only consumes itself and its separator, so "config: password=x" still finds "password".
std::string redact_key_values(const std::string& text) {
  static const std::regex* re = new std::regex(
      R"re((["']?)([A-Za-z_][A-Za-z0-9_.\-]*)\1([ \t]*[=:][ \t]*)(?:"([^"\n]*)"|'([^'\n]*)'|((?!//)[^\s"',;&})\]]+)))re");
  std::string out;
  auto from = text.cbegin();
  std::smatch m;
  while (std::regex_search(from, text.cend(), m, *re)) {
    out.append(from, m[0].first);
    const std::string head = m[1].str() + m[2].str() + m[1].str() + m[3].str();
    if (!is_secret_name(m[2].str())) {
      out += head;
      from = m[3].second;
      continue;
    }
    if (m[4].matched) out += head + "\"" + (m[4].length() ? kRedacted : "") + "\"";
    else if (m[5].matched) out += head + "'" + (m[5].length() ? kRedacted : "") + "'";
    else if (already_redacted(m[6].str())) out += m[0].str();
    else out += head + kRedacted;
    from = m[0].second;
  }
  out.append(from, text.cend());
  return out;
}

// "--token XXX" inside a command line kept as one string.
std::string redact_flag_values(const std::string& text) {
  static const std::regex* re = new std::regex(R"((^|\s)(--?[A-Za-z][A-Za-z0-9_.\-]*)(\s+)([^\s\-]\S*))");
  return replace_each(text, *re, [](const std::smatch& m) {
    if (!is_secret_name(m[2].str()) || already_redacted(m[4].str())) return m[0].str();
    return m[1].str() + m[2].str() + m[3].str() + kRedacted;
  });
}

// Token formats published by their issuers.
std::string redact_known_token_shapes(const std::string& text) {
  static const std::regex* re = new std::regex(
      "(^|[^A-Za-z0-9_])("
      "hf_[A-Za-z0-9]{20,}"                       // Hugging Face
      "|gh[pousr]_[A-Za-z0-9]{20,}"               // GitHub
      "|github_pat_[A-Za-z0-9_]{20,}"             // GitHub fine-grained
      "|sk-[A-Za-z0-9_\\-]{20,}"                  // OpenAI-style
      "|(?:AKIA|ASIA)[0-9A-Z]{16}"                // AWS access key id
      "|xox[abprs]-[A-Za-z0-9\\-]{10,}"           // Slack
      "|eyJ[A-Za-z0-9_\\-]{8,}\\.[A-Za-z0-9_\\-]{8,}\\.[A-Za-z0-9_\\-]*"  // JWT
      ")");
  return replace_each(text, *re, [](const std::smatch& m) { return m[1].str() + kRedacted; });
}

enum CharClass { kLower, kUpper, kDigit, kOther };
CharClass class_of(char c) {
  if (c >= 'a' && c <= 'z') return kLower;
  if (c >= 'A' && c <= 'Z') return kUpper;
  if (c >= '0' && c <= '9') return kDigit;
  return kOther;
}

// Random base64 switches between lower / upper / digit on about 60% of neighbouring
// characters and mixes all three; words, paths and CamelCase identifiers switch far less.
// Only pairs of letters/digits count, so '/', '-', '_' separators of paths add nothing.
bool looks_random_base64(const std::string& run) {
  bool seen[4] = {false, false, false, false};
  size_t pairs = 0, switches = 0;
  for (size_t i = 0; i < run.size(); ++i) {
    seen[class_of(run[i])] = true;
    if (i == 0 || class_of(run[i]) == kOther || class_of(run[i - 1]) == kOther) continue;
    ++pairs;
    if (class_of(run[i]) != class_of(run[i - 1])) ++switches;
  }
  if (!seen[kLower] || !seen[kUpper] || !seen[kDigit] || pairs == 0) return false;
  return switches * 100 >= pairs * 40;
}

bool looks_hex_secret(const std::string& run) {
  bool digit = false, letter = false;
  for (char c : run) {
    if (c >= '0' && c <= '9') digit = true;
    else if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) letter = true;
    else return false;
  }
  return digit && letter;
}

constexpr size_t kMinSecretRun = 32;

// Replaces maximal runs of chars accepted by in_run, of length >= kMinSecretRun, for which
// is_secret holds.
template <class InRun, class IsSecret>
std::string redact_runs(const std::string& text, InRun in_run, IsSecret is_secret) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (!in_run(text[i])) {
      out += text[i++];
      continue;
    }
    size_t j = i;
    while (j < text.size() && in_run(text[j])) ++j;
    std::string run = text.substr(i, j - i);
    if (run.size() >= kMinSecretRun && is_secret(run)) {
      out += kRedacted;
      while (j < text.size() && text[j] == '=') ++j;  // base64 padding
    } else {
      out += run;
    }
    i = j;
  }
  return out;
}

std::string redact_random_runs(const std::string& text) {
  std::string s = redact_runs(text, is_alnum, looks_hex_secret);
  return redact_runs(
      s, [](char c) { return is_alnum(c) || c == '+' || c == '/' || c == '_' || c == '-'; },
      looks_random_base64);
}

}  // namespace

bool is_secret_name(const std::string& raw) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : lower(raw)) {
    if (is_alnum(c)) {
      cur += c;
    } else if (!cur.empty()) {
      parts.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  if (parts.size() == 1 && parts[0] == "key") return true;

  static const char* const kSecretEndings[] = {"token", "secret", "secrets", "password", "passwd",
                                               "passphrase", "apikey", "credential", "credentials"};
  // "pad_token=<pad>": tokenizer vocabulary, not a secret.
  static const char* const kVocabularyWords[] = {"pad", "eos", "bos", "unk", "mask", "sep", "cls",
                                                 "start", "end", "special"};
  static const char* const kKeyQualifiers[] = {"api", "access", "secret", "private", "client",
                                               "auth", "encryption", "master", "signing", "ssh",
                                               "license", "account", "service", "session"};
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    const std::string prev = i > 0 ? parts[i - 1] : "";
    for (const char* e : kSecretEndings) {
      if (!ends_with(p, e)) continue;
      bool vocabulary = false;
      for (const char* w : kVocabularyWords)
        if (prev == w || p == std::string(w) + e) vocabulary = true;
      if (!vocabulary) return true;
    }
    if (p.size() > 3 && ends_with(p, "pwd")) return true;
    if (p == "auth" || p == "authorization" || p == "pass" || p == "cookie") return true;
    if (p == "key")
      for (const char* q : kKeyQualifiers)
        if (prev == q) return true;
  }
  return false;
}

namespace {
// The regular expressions below restart at every position of a run, so their cost grows with
// the square of the longest run without white space. Nothing legitimate in a command line or a
// config value is that long; a run that is could be an inlined key: hide it whole, cheaply.
constexpr size_t kMaxRun = 512;

std::string redact_overlong_runs(const std::string& text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) {
      out += text[i++];
      continue;
    }
    size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    if (j - i > kMaxRun)
      out += kRedacted;
    else
      out.append(text, i, j - i);
    i = j;
  }
  return out;
}
}  // namespace

std::string redact(const std::string& text) {
  std::string s = redact_url_credentials(redact_overlong_runs(text));
  s = redact_auth_schemes(s);
  s = redact_key_values(s);
  s = redact_flag_values(s);
  s = redact_known_token_shapes(s);
  // Again at the end: a secret shorter than the marker lengthens its run ("pwd=x" becomes
  // "pwd=[REDACTED]"), and a run pushed past the limit here would be hidden by a second
  // redaction only, so redacting twice would change more than redacting once.
  return redact_overlong_runs(redact_random_runs(s));
}

std::vector<std::string> redact_argv(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  out.reserve(argv.size());
  bool value_is_secret = false;
  for (const std::string& arg : argv) {
    if (value_is_secret && arg.rfind("--", 0) != 0) {
      out.push_back(kRedacted);
      value_is_secret = false;
      continue;
    }
    value_is_secret = arg.size() > 1 && arg[0] == '-' && arg.find('=') == std::string::npos &&
                      is_secret_name(arg);
    out.push_back(redact(arg));
  }
  return out;
}

}  // namespace nantrace
