// sink.hpp - where the SMTP server hands accepted messages
//
// MessageSink::begin() opens an incoming message for one envelope; the server streams
// the DATA bytes (already un-dot-stuffed, CRLF line ends, without the final ".")
// through write(), then calls commit(). commit() completes asynchronously: the callback
// is invoked exactly once, from any thread, with the queue id once the message and its
// envelope are durable on disk (file and directory fsynced), or with an error message
// if they could not be stored. Only after a successful callback may the server reply
// 250. abort() discards everything written; nothing half-written stays visible.
// A TemporaryError thrown by begin() or write() means "reply 4xx, try later".
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/envelope.hpp"

namespace pecd::queue {

struct CommitResult {
    bool ok = false;
    std::string queue_id;  // set when ok
    std::string error;     // set when !ok: why the message was not stored
};

class IncomingMessage {
public:
    virtual ~IncomingMessage() = default;
    virtual void write(std::string_view chunk) = 0;
    virtual void commit(std::function<void(CommitResult)> done) = 0;
    virtual void abort() noexcept = 0;
};

class MessageSink {
public:
    virtual ~MessageSink() = default;
    virtual std::unique_ptr<IncomingMessage> begin(const Envelope& envelope) = 0;
};

}  // namespace pecd::queue
