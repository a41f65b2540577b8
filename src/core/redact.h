// Secret redaction for everything nantrace copies from the host into its outputs (argv,
// config values, environment facts). Reports get pasted into public GitHub issues, so we
// prefer redacting a harmless value now and then over leaking a token once.
#pragma once

#include <string>
#include <vector>

namespace nantrace {

// The text that replaces a secret.
inline constexpr const char* kRedacted = "[REDACTED]";

// Replaces values that look like secrets with "[REDACTED]":
//  - the value of a key whose name says it is secret: "--api-key=XXX", "password=...",
//    "HF_TOKEN=...", "\"secret\": \"...\"", "--token XXX" (flag followed by its value);
//  - the password of a URL with credentials ("https://user:pass@host");
//  - "Bearer XXX" authorization values;
//  - well-known token shapes: hf_..., ghp_/gho_/ghs_/ghu_/ghr_..., github_pat_..., sk-...,
//    AKIA/ASIA access key ids, Slack xox?-..., JWTs (eyJ...);
//  - long random-looking runs: >= 32 hex digits, or >= 32 base64 characters that mix digits,
//    upper and lower case the way random data does (paths and identifiers do not).
std::string redact(const std::string& text);

// Same, element by element, plus: an element that follows a secret-named flag without "="
// ("--token", "XXX") is replaced as a whole.
std::vector<std::string> redact_argv(const std::vector<std::string>& argv);

// True when a key / flag name says its value is secret ("HF_TOKEN", "--api-key", "password").
bool is_secret_name(const std::string& name);

}  // namespace nantrace
