// crash_message.hpp - the messages of the crash test, derived from a token so that the
// checker can tell a complete message from a truncated or mixed one
#pragma once

#include <string>
#include <vector>

namespace pecd::test {

inline std::string crash_body(int token) {
    std::string b = "From: crash@sender.test\r\nTo: rcpt@crash.test\r\nSubject: crash test " +
                    std::to_string(token) + "\r\nX-Token: " + std::to_string(token) + "\r\n\r\n";
    int lines = 20 + (token * 37) % 200;  // sizes from ~1 KB to ~15 KB
    for (int i = 0; i < lines; ++i)
        b += "token " + std::to_string(token) + " line " + std::to_string(i) +
             " ................................\r\n";
    b += ".leading dot line stays as it is\r\nend " + std::to_string(token) + "\r\n";
    return b;
}

inline std::vector<std::string> crash_recipients(int token) {
    std::vector<std::string> r{"rcpt" + std::to_string(token % 4) + "@crash.test"};
    if (token % 3 == 0) r.push_back("rcpt" + std::to_string((token + 1) % 4) + "@crash.test");
    return r;
}

}  // namespace pecd::test
