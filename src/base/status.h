// Status / Result<T>: the error channel of every layer. Readers never abort; they return a
// Status whose message is one line naming the file, the object (tensor, key) and what was
// expected versus found.
#pragma once

#include <fmt/format.h>

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace rtnq {

class Status {
 public:
  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !message_.has_value(); }
  const std::string& message() const {
    static const std::string kOk = "OK";
    return message_ ? *message_ : kOk;
  }
  // Prefixes context ("file.gguf: ") to an error; returns OK unchanged.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(context + ": " + *message_);
  }

 private:
  explicit Status(std::string message) : message_(std::move(message)) {}
  std::optional<std::string> message_;
};

// Formats an error message: Err("tensor {} has {} bytes, expected {}", name, n, m).
template <typename... Args>
Status Err(fmt::format_string<Args...> f, Args&&... args) {
  return Status::Error(fmt::format(f, std::forward<Args>(args)...));
}

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace rtnq

#define RTNQ_CONCAT_INNER(a, b) a##b
#define RTNQ_CONCAT(a, b) RTNQ_CONCAT_INNER(a, b)

// Returns early from the enclosing function if `expr` (a Status) is an error.
#define RTNQ_RETURN_IF_ERROR(expr)              \
  do {                                          \
    ::rtnq::Status rtnq_status_ = (expr);       \
    if (!rtnq_status_.ok()) return rtnq_status_; \
  } while (0)

// RTNQ_ASSIGN_OR_RETURN(auto x, MakeX()); declares x from a Result or returns its Status.
#define RTNQ_ASSIGN_OR_RETURN(decl, expr) \
  RTNQ_ASSIGN_OR_RETURN_IMPL(RTNQ_CONCAT(rtnq_result_, __LINE__), decl, expr)
#define RTNQ_ASSIGN_OR_RETURN_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  decl = std::move(tmp).value()
