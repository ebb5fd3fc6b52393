// error.hpp - the error types shared by every module
//
// Error           a failure with a human-readable message; what() says what and where.
// TemporaryError  the operation may succeed later (disk full, peer down): SMTP 4xx.
// ParseError      input is malformed; carries the line (1-based, 0 = unknown) and the
//                 element or field that is wrong, so the operator can fix the input.
#pragma once

#include <stdexcept>
#include <string>

namespace pecd {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class TemporaryError : public Error {
public:
    using Error::Error;
};

class ParseError : public Error {
public:
    ParseError(std::string what, std::size_t line = 0, std::string field = {})
        : Error(format(what, line, field)), line_(line), field_(std::move(field)) {}
    std::size_t line() const noexcept { return line_; }
    const std::string& field() const noexcept { return field_; }

private:
    static std::string format(const std::string& what, std::size_t line, const std::string& field) {
        std::string s;
        if (line) s += "line " + std::to_string(line) + ": ";
        if (!field.empty()) s += field + ": ";
        return s + what;
    }
    std::size_t line_;
    std::string field_;
};

}  // namespace pecd
