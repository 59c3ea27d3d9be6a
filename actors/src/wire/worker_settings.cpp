#include "wire/worker_settings.hpp"

#include <chrono>

#include "caf/binary_deserializer.hpp"
#include "caf/binary_serializer.hpp"

#include "dref/actors/error.hpp"

namespace dref::internal {

namespace {

int64_t ms(caf::timespan t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t).count();
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

} // namespace

worker_settings worker_settings::of(const config& cfg) {
  worker_settings x;
  x.inline_limit = cfg.inline_limit;
  x.scheduler_threads = static_cast<uint32_t>(cfg.scheduler_threads);
  x.scheduler_policy = cfg.scheduler_policy;
  x.middleman_workers = static_cast<uint32_t>(cfg.middleman_workers);
  x.fetch_timeout_ms = ms(cfg.fetch_timeout);
  x.heartbeat_interval_ms = ms(cfg.heartbeat_interval);
  x.connection_timeout_ms = ms(cfg.connection_timeout);
  x.transit_timeout_ms = ms(cfg.transit_timeout);
  x.death_grace_ms = ms(cfg.death_grace);
  return x;
}

config worker_settings::to_config() const {
  config cfg;
  cfg.inline_limit = inline_limit;
  cfg.scheduler_threads = scheduler_threads;
  cfg.scheduler_policy = scheduler_policy;
  cfg.middleman_workers = middleman_workers;
  cfg.fetch_timeout = std::chrono::milliseconds{fetch_timeout_ms};
  cfg.heartbeat_interval = std::chrono::milliseconds{heartbeat_interval_ms};
  cfg.connection_timeout = std::chrono::milliseconds{connection_timeout_ms};
  cfg.transit_timeout = std::chrono::milliseconds{transit_timeout_ms};
  cfg.death_grace = std::chrono::milliseconds{death_grace_ms};
  return cfg;
}

std::string encode(const worker_settings& x) {
  std::vector<char> bytes;
  caf::binary_serializer sink{nullptr, bytes};
  auto copy = x;
  static_cast<void>(sink(copy)); // a vector sink cannot fail
  static constexpr char digits[] = "0123456789abcdef";
  std::string text;
  text.reserve(bytes.size() * 2);
  for (auto c : bytes) {
    auto b = static_cast<unsigned char>(c);
    text += digits[b >> 4];
    text += digits[b & 0x0F];
  }
  return text;
}

caf::expected<worker_settings>
decode_worker_settings(const std::string& text) {
  if (text.size() % 2 != 0)
    return make_error(actors_errc::invalid_argument,
                      "worker settings: odd number of hex digits");
  std::vector<char> bytes;
  bytes.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    auto hi = hex_digit(text[i]);
    auto lo = hex_digit(text[i + 1]);
    if (hi < 0 || lo < 0)
      return make_error(actors_errc::invalid_argument,
                        "worker settings: not lower-case hex");
    bytes.push_back(static_cast<char>((hi << 4) | lo));
  }
  // The version first: another version is refused before its fields are
  // read as if they were ours.
  caf::binary_deserializer head{nullptr, bytes};
  uint32_t version = 0;
  if (head(version))
    return make_error(actors_errc::invalid_argument,
                      "worker settings: truncated");
  if (version != worker_settings::current_version)
    return make_error(actors_errc::invalid_argument,
                      "worker settings of version " + std::to_string(version)
                        + "; this program reads version "
                        + std::to_string(worker_settings::current_version));
  worker_settings x;
  caf::binary_deserializer source{nullptr, bytes};
  if (source(x))
    return make_error(actors_errc::invalid_argument,
                      "worker settings: truncated or malformed");
  return x;
}

} // namespace dref::internal
