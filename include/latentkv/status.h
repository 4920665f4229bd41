// Error handling shared by every part of latentkv.
//
// Engine-facing calls (kernels, cache, C API) return a Status and never throw. Offline code
// (loading, calibration, decomposition) throws latentkv::Error, and the API edge converts it with
// status_from_exception(). Library code never calls exit() or abort().
#pragma once

#include <exception>
#include <new>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace latentkv {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,  ///< a caller-supplied value is out of range or inconsistent
  kNotFound = 2,         ///< missing file, tensor or metadata key
  kIoError = 3,          ///< read/write/mmap failure
  kCorruptData = 4,      ///< file content is malformed, truncated or fails a checksum
  kUnsupported = 5,      ///< valid input that this build cannot handle (type, arch, shape)
  kNumericalError = 6,   ///< NaN/Inf, non-positive-definite matrix, failed factorization
  kCudaError = 7,        ///< a CUDA or cuBLAS call failed
  kOutOfMemory = 8,      ///< host or device allocation failed / buffer too small
  kInternal = 9,         ///< a broken invariant inside latentkv (a bug)
};

/// Stable lowercase name of a status code ("invalid_argument", ...).
inline const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kIoError: return "io_error";
    case StatusCode::kCorruptData: return "corrupt_data";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kNumericalError: return "numerical_error";
    case StatusCode::kCudaError: return "cuda_error";
    case StatusCode::kOutOfMemory: return "out_of_memory";
    case StatusCode::kInternal: return "internal";
  }
  return "unknown";
}

/// Result of an engine-facing call: a code and a human-readable one-line message.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  /// "invalid_argument: rank 0 is out of range [1, 128]"
  std::string to_string() const {
    return ok() ? std::string("ok") : std::string(status_code_name(code_)) + ": " + message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

/// Exception thrown by offline code; carries a StatusCode.
class Error : public std::runtime_error {
 public:
  Error(StatusCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  StatusCode code() const { return code_; }
  Status status() const { return Status(code_, what()); }

 private:
  StatusCode code_;
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

/// Builds a message from streamable pieces: str_cat("rank ", r, " > ", max).
template <typename... Args>
std::string str_cat(Args&&... args) {
  return detail::concat(std::forward<Args>(args)...);
}

/// Converts the exception in flight into a Status. Call only inside a catch block.
inline Status status_from_exception() {
  try {
    throw;
  } catch (const Error& e) {
    return e.status();
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kOutOfMemory, "host allocation failed");
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, e.what());
  } catch (...) {
    return Status(StatusCode::kInternal, "unknown exception");
  }
}

/// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(runtime/explicit)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(runtime/explicit)
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "Result built from an ok Status");
  }
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  /// The value, or throws Error with the status (for offline code).
  T value_or_throw() && {
    if (!ok()) throw Error(status_.code(), status_.message());
    return std::move(*value_);
  }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace latentkv

/// Throws latentkv::Error(code, message built from the remaining arguments).
#define LKV_THROW(code, ...) throw ::latentkv::Error((code), ::latentkv::str_cat(__VA_ARGS__))

/// Throws kInvalidArgument unless cond holds.
#define LKV_CHECK_ARG(cond, ...)                                                   \
  do {                                                                             \
    if (!(cond)) LKV_THROW(::latentkv::StatusCode::kInvalidArgument, __VA_ARGS__); \
  } while (0)

/// Returns the Status from the enclosing function when it is not ok.
#define LKV_RETURN_IF_ERROR(expr)            \
  do {                                       \
    ::latentkv::Status lkv_status_ = (expr); \
    if (!lkv_status_.ok()) return lkv_status_; \
  } while (0)
