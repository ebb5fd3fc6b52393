// dsn.cpp - building RFC 3464 delivery status notifications (see dsn.hpp)
//
// The report has a fixed structure with ASCII fields, so it is assembled as text here; the
// original message is enclosed byte for byte (message/rfc822 allows 8bit content).
#include "queue/dsn.hpp"

#include <ctime>

#include "core/strings.hpp"

namespace pecd::queue {
namespace {

// Field values come from the network (addresses, replies); a CR or LF would let them
// inject header lines into the report.
std::string field(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) out += (c == '\r' || c == '\n') ? ' ' : c;
    return out;
}

std::string headers_of(std::string_view message) {
    auto end = message.find("\r\n\r\n");
    if (end == std::string_view::npos) return std::string(message);
    return std::string(message.substr(0, end + 2));
}

bool all_delayed(const DsnInput& in) {
    for (const auto& r : in.recipients)
        if (r.action != "delayed") return false;
    return !in.recipients.empty();
}

std::string human_text(const DsnInput& in) {
    std::string t = "This is the mail system at host " + field(in.reporting_mta) + ".\r\n\r\n";
    if (all_delayed(in))
        t += "Your message could not be delivered yet to one or more recipients.\r\n"
             "It is still in the queue and delivery will be retried until " +
             rfc5322_date(in.will_retry_until) + ".\r\nYou do not need to send it again.\r\n\r\n";
    else
        t += "Your message could not be delivered to one or more recipients.\r\n"
             "The delivery report below names them and the reason.\r\n\r\n";
    for (const auto& r : in.recipients) {
        t += "<" + field(r.address) + ">: ";
        t += r.diagnostic.empty() ? "status " + field(r.status) : field(r.diagnostic);
        t += "\r\n";
    }
    return t;
}

}  // namespace

std::string rfc5322_date(TimePoint t) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return buf;
}

std::string status_of_reply(std::string_view reply) {
    auto r = trim(reply);
    if (r.size() >= 9 && r[3] == ' ' && (r[4] == '2' || r[4] == '4' || r[4] == '5') && r[5] == '.') {
        auto end = r.find(' ', 4);
        auto code = r.substr(4, end == std::string_view::npos ? std::string_view::npos : end - 4);
        bool ok = code.size() >= 5;
        for (char c : code) ok = ok && ((c >= '0' && c <= '9') || c == '.');
        if (ok) return std::string(code);
    }
    if (!r.empty() && (r[0] == '4' || r[0] == '5')) return std::string(1, r[0]) + ".0.0";
    return "5.0.0";
}

bool wants_delay_dsn(std::string_view mail_from, std::string_view notify, bool is_dsn) {
    if (mail_from.empty() || is_dsn) return false;
    if (notify.empty()) return true;
    return to_upper(notify).find("DELAY") != std::string::npos;
}

bool wants_failure_dsn(std::string_view mail_from, std::string_view notify, bool is_dsn) {
    if (mail_from.empty() || is_dsn) return false;
    if (notify.empty()) return true;
    auto n = to_upper(notify);
    return n.find("FAILURE") != std::string::npos;
}

std::string build_dsn(const DsnInput& in) {
    const std::string boundary = "=_pecd_dsn_" + in.queue_id;
    const bool delayed = all_delayed(in);
    std::string m;
    m += "From: Mail Delivery System <MAILER-DAEMON@" + field(in.reporting_mta) + ">\r\n";
    m += "To: <" + field(in.sender) + ">\r\n";
    m += delayed ? "Subject: Delayed Mail (still being retried)\r\n"
                 : "Subject: Undelivered Mail Returned to Sender\r\n";
    m += "Date: " + rfc5322_date(in.now) + "\r\n";
    m += "Message-ID: <" + field(in.message_id) + ">\r\n";
    m += "Auto-Submitted: auto-replied\r\n";
    m += "MIME-Version: 1.0\r\n";
    m +=
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" + boundary + "\"\r\n";
    m += "\r\nThis is a MIME-encapsulated message.\r\n\r\n";

    m += "--" + boundary + "\r\n";
    m += "Content-Type: text/plain; charset=us-ascii\r\nContent-Description: Notification\r\n\r\n";
    m += human_text(in);
    m += "\r\n--" + boundary + "\r\n";
    m += "Content-Type: message/delivery-status\r\nContent-Description: Delivery report\r\n\r\n";
    m += "Reporting-MTA: dns; " + field(in.reporting_mta) + "\r\n";
    m += "X-Pecd-Queue-ID: " + field(in.queue_id) + "\r\n";
    if (!in.envid.empty()) m += "Original-Envelope-Id: " + field(in.envid) + "\r\n";
    m += "Arrival-Date: " + rfc5322_date(in.arrival) + "\r\n";
    for (const auto& r : in.recipients) {
        m += "\r\n";
        if (!r.orcpt.empty()) m += "Original-Recipient: " + field(r.orcpt) + "\r\n";
        m += "Final-Recipient: rfc822; " + field(r.address) + "\r\n";
        m += "Action: " + field(r.action) + "\r\n";
        m += "Status: " + field(r.status) + "\r\n";
        if (!r.remote_mta.empty()) m += "Remote-MTA: dns; " + field(r.remote_mta) + "\r\n";
        if (!r.diagnostic.empty()) m += "Diagnostic-Code: smtp; " + field(r.diagnostic) + "\r\n";
        m += "Last-Attempt-Date: " + rfc5322_date(in.now) + "\r\n";
        if (r.action == "delayed" && in.will_retry_until != TimePoint{})
            m += "Will-Retry-Until: " + rfc5322_date(in.will_retry_until) + "\r\n";
    }
    m += "\r\n--" + boundary + "\r\n";
    bool full = !iequals(in.ret, "HDRS") && in.original.size() <= in.full_limit;
    if (full) {
        m += "Content-Type: message/rfc822\r\nContent-Description: Undelivered Message\r\n\r\n";
        m += in.original;
        if (!in.original.ends_with("\r\n")) m += "\r\n";
    } else {
        m += "Content-Type: text/rfc822-headers\r\nContent-Description: Undelivered Message Headers\r\n\r\n";
        m += headers_of(in.original);
    }
    m += "\r\n--" + boundary + "--\r\n";
    return m;
}

}  // namespace pecd::queue
