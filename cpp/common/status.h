// Status and Result<T>: how the native core reports failure.
//
// The core never throws from kernels or search code. Every fallible function returns a Status (or a
// Result<T> carrying a value on success). The Python glue turns a non-OK Status into the matching
// vecstore.errors class in exactly one place (cpp/python/errors.cc: raise_if_error).
//
// Codes are stable: they are mirrored by name in python/vecstore/errors.py.
#pragma once

#include <string>
#include <utility>

namespace vecstore {

enum class StatusCode : int {
    kOk = 0,
    kInvalidArgument = 1,
    kNotFound = 2,
    kCorruption = 3,
    kIOError = 4,
    kCancelled = 5,
    kInternal = 6,
};

class Status {
  public:
    Status() = default;  // OK
    Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status OK() { return Status(); }
    static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
    static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
    static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
    static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
    static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
    static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

    bool ok() const { return code_ == StatusCode::kOk; }
    StatusCode code() const { return code_; }
    const std::string& message() const { return message_; }

  private:
    StatusCode code_ = StatusCode::kOk;
    std::string message_;
};

// A value or a non-OK Status. Access value() only when ok().
template <typename T>
class Result {
  public:
    Result(T value) : value_(std::move(value)) {}        // NOLINT: implicit by design
    Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design

    bool ok() const { return status_.ok(); }
    const Status& status() const { return status_; }
    T& value() { return value_; }
    const T& value() const { return value_; }

  private:
    Status status_;
    T value_{};
};

}  // namespace vecstore
