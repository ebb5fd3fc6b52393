// texts.cpp - Italian and English texts of the PEC messages (see texts.hpp)
//
// Each kind is described once as paragraphs (a paragraph may be a recipient list); the
// plain and HTML renderings are produced from the same paragraphs so they cannot say
// different things.
#include "pec/texts.hpp"

namespace pecd::pec {
namespace {

struct Paragraph {
    std::string text;                // may be empty when only a list is shown
    std::vector<std::string> items;  // rendered as a list after the text
};

struct Version {
    std::string title;
    std::vector<Paragraph> paragraphs;
};

std::string q(const std::string& s) {
    return "\"" + s + "\"";
}

std::vector<std::string> recipient_items(const TextFacts& f, bool it, bool with_type) {
    std::vector<std::string> out;
    for (const auto& r : f.recipients) {
        std::string line = r.address;
        if (with_type) {
            bool cert = r.type == RecipientType::certificato;
            line += it ? (cert ? " (\"posta certificata\")" : " (\"posta ordinaria\")")
                       : (cert ? " (\"certified mail\")" : " (\"ordinary mail\")");
        }
        out.push_back(line);
    }
    return out;
}

Version italian(const TextFacts& f) {
    const std::string when =
        "Il giorno " + f.time.giorno() + " alle ore " + f.time.ora() + " (" + f.time.zona() + ")";
    const std::string msg = "il messaggio " + q(f.subject) + " proveniente da " + q(f.sender);
    const std::string id = "Identificativo del messaggio: " + f.pec_msgid;
    const std::string to_rcpt = " ed indirizzato a " + q(f.recipient);
    switch (f.kind) {
        case MessageKind::transport_envelope:
            return {
                "Messaggio di posta certificata",
                {{when + " " + msg + " è stato inviato ed indirizzato a:", recipient_items(f, true, false)},
                 {"Il messaggio originale è incluso in allegato.", {}},
                 {id, {}}}};
        case MessageKind::anomaly_envelope:
            return {"Anomalia nel messaggio",
                    {{when + " è stato ricevuto " + msg + " indirizzato a:", recipient_items(f, true, false)},
                     {"Tali dati non sono stati certificati per il seguente errore: " + f.error_text, {}},
                     {"Il messaggio originale è incluso in allegato.", {}}}};
        case MessageKind::accettazione:
            return {"Ricevuta di accettazione",
                    {{when + " " + msg + " ed indirizzato a:", recipient_items(f, true, true)},
                     {"è stato accettato dal sistema ed inoltrato.", {}},
                     {id, {}}}};
        case MessageKind::non_accettazione:
            return {"Avviso di non accettazione",
                    {{when + " nel messaggio " + q(f.subject) + " proveniente da " + q(f.sender) +
                          " ed indirizzato a:",
                      recipient_items(f, true, false)},
                     {"è stato rilevato un problema che ne impedisce l'accettazione: " + f.error_text, {}},
                     {"Il messaggio non è stato accettato.", {}},
                     {id, {}}}};
        case MessageKind::non_accettazione_virus:
            return {"Avviso di non accettazione per virus",
                    {{when + " nel messaggio " + q(f.subject) + " proveniente da " + q(f.sender) +
                          " ed indirizzato a:",
                      recipient_items(f, true, false)},
                     {"è stato rilevato un problema di sicurezza (virus informatico)" +
                          (f.error_text.empty() ? std::string() : ": " + f.error_text),
                      {}},
                     {"Il messaggio non è stato accettato.", {}},
                     {id, {}}}};
        case MessageKind::presa_in_carico:
            return {"Ricevuta di presa in carico",
                    {{when + " " + msg + " ed indirizzato a:", f.covered},
                     {"è stato accettato dal gestore di posta certificata dei destinatari.", {}},
                     {id, {}}}};
        case MessageKind::rilevazione_virus:
            return {"Avviso di rilevazione virus",
                    {{when + " nel messaggio " + q(f.subject) + " proveniente da " + q(f.sender) + to_rcpt +
                          " è stato rilevato un virus informatico.",
                      {}},
                     {"Il messaggio non è stato consegnato.", {}},
                     {id, {}}}};
        case MessageKind::mancata_consegna:
            return {"Avviso di mancata consegna",
                    {{when + " nel messaggio " + q(f.subject) + " proveniente da " + q(f.sender) + to_rcpt +
                          " si è verificato un errore: " + f.error_text,
                      {}},
                     {"Il messaggio non è stato consegnato.", {}},
                     {id, {}}}};
        case MessageKind::mancata_consegna_virus:
            return {
                "Avviso di mancata consegna per virus",
                {{when + " il messaggio " + q(f.subject) + " proveniente da " + q(f.sender) + to_rcpt +
                      " non è stato consegnato perché il gestore del destinatario vi ha rilevato un virus "
                      "informatico.",
                  {}},
                 {id, {}}}};
        case MessageKind::mancata_consegna_timeout_12h:
            return {
                "Avviso di mancata consegna per superamento dei tempi massimi",
                {{when + " " + msg + to_rcpt + " non risulta consegnato nelle prime 12 ore dall'invio.", {}},
                 {"Se la ricevuta di avvenuta consegna non perverrà nelle prossime 12 ore, seguirà un "
                  "ulteriore avviso.",
                  {}},
                 {id, {}}}};
        case MessageKind::mancata_consegna_timeout_24h:
            return {"Avviso di mancata consegna per superamento dei tempi massimi",
                    {{when + " " + msg + to_rcpt + " non risulta consegnato entro 24 ore dall'invio.", {}},
                     {"La transazione è da considerarsi conclusa con esito negativo.", {}},
                     {id, {}}}};
        case MessageKind::consegna_completa:
        case MessageKind::consegna_breve:
        case MessageKind::consegna_sintetica: {
            Version v{
                "Ricevuta di avvenuta consegna",
                {{when + " " + msg + to_rcpt + " è stato consegnato nella casella di destinazione.", {}}}};
            if (f.kind == MessageKind::consegna_completa)
                v.paragraphs.push_back({"Il messaggio originale è incluso in allegato (postacert.eml).", {}});
            else if (f.kind == MessageKind::consegna_breve)
                v.paragraphs.push_back(
                    {"Il messaggio originale è incluso in allegato (postacert.eml) con ogni "
                     "allegato sostituito dalla sua impronta (file .hash).",
                     {}});
            v.paragraphs.push_back({id, {}});
            return v;
        }
    }
    return {};
}

Version english(const TextFacts& f) {
    const std::string when = "On " + f.time.giorno() + " at " + f.time.ora() + " (" + f.time.zona() + ")";
    const std::string msg = "the message " + q(f.subject) + " sent by " + q(f.sender);
    const std::string id = "Message identifier: " + f.pec_msgid;
    const std::string to_rcpt = " to " + q(f.recipient);
    switch (f.kind) {
        case MessageKind::transport_envelope:
            return {"Certified mail message",
                    {{when + " " + msg + " was sent to:", recipient_items(f, false, false)},
                     {"The original message is attached.", {}},
                     {id, {}}}};
        case MessageKind::anomaly_envelope:
            return {"Message anomaly",
                    {{when + " " + msg + " was received, addressed to:", recipient_items(f, false, false)},
                     {"The data has not been certified due to the following error: " + f.error_text, {}},
                     {"The original message is attached.", {}}}};
        case MessageKind::accettazione:
            return {"Acceptance receipt",
                    {{when + " " + msg + " to:", recipient_items(f, false, true)},
                     {"was accepted by the system and forwarded.", {}},
                     {id, {}}}};
        case MessageKind::non_accettazione:
            return {"Non-acceptance notice",
                    {{when + " a problem preventing acceptance was found in " + msg + " to:",
                      recipient_items(f, false, false)},
                     {"Reason: " + f.error_text, {}},
                     {"The message has not been accepted.", {}},
                     {id, {}}}};
        case MessageKind::non_accettazione_virus:
            return {"Non-acceptance notice due to virus",
                    {{when + " a security problem (computer virus) was found in " + msg + " to:",
                      recipient_items(f, false, false)},
                     {"The message has not been accepted.", {}},
                     {id, {}}}};
        case MessageKind::presa_in_carico:
            return {"Take-in-charge receipt",
                    {{when + " " + msg + " to:", f.covered},
                     {"was taken in charge by the recipients' certified mail provider.", {}},
                     {id, {}}}};
        case MessageKind::rilevazione_virus:
            return {"Virus detection notice",
                    {{when + " a computer virus was found in " + msg + to_rcpt + ".", {}},
                     {"The message has not been delivered.", {}},
                     {id, {}}}};
        case MessageKind::mancata_consegna:
            return {"Non-delivery notice",
                    {{when + " an error occurred delivering " + msg + to_rcpt + ": " + f.error_text, {}},
                     {"The message has not been delivered.", {}},
                     {id, {}}}};
        case MessageKind::mancata_consegna_virus:
            return {"Non-delivery notice due to virus",
                    {{when + " " + msg + to_rcpt +
                          " was not delivered because the recipient's provider found a computer virus in it.",
                      {}},
                     {id, {}}}};
        case MessageKind::mancata_consegna_timeout_12h:
            return {"Non-delivery notice: time limit exceeded",
                    {{when + " " + msg + to_rcpt + " had not been delivered within the first 12 hours.", {}},
                     {"Another notice will follow if no delivery receipt arrives in the next 12 hours.", {}},
                     {id, {}}}};
        case MessageKind::mancata_consegna_timeout_24h:
            return {"Non-delivery notice: time limit exceeded",
                    {{when + " " + msg + to_rcpt + " had not been delivered within 24 hours.", {}},
                     {"The transaction is considered terminated with a negative outcome.", {}},
                     {id, {}}}};
        case MessageKind::consegna_completa:
        case MessageKind::consegna_breve:
        case MessageKind::consegna_sintetica: {
            Version v{"Delivery receipt",
                      {{when + " " + msg + to_rcpt + " was delivered to the mailbox.", {}}}};
            if (f.kind == MessageKind::consegna_completa)
                v.paragraphs.push_back({"The original message is attached (postacert.eml).", {}});
            else if (f.kind == MessageKind::consegna_breve)
                v.paragraphs.push_back(
                    {"The original message is attached (postacert.eml), each attachment replaced by its hash "
                     "(.hash file).",
                     {}});
            v.paragraphs.push_back({id, {}});
            return v;
        }
    }
    return {};
}

std::string html_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

void plain(std::string& out, const Version& v) {
    out += "-- " + v.title + " --\n\n";
    for (const auto& p : v.paragraphs) {
        if (!p.text.empty()) out += p.text + "\n";
        for (const auto& i : p.items) out += "  " + i + "\n";
        out += "\n";
    }
}

void html(std::string& out, const Version& v, const char* lang) {
    out += "<div lang=\"" + std::string(lang) + "\">\n<h3>" + html_escape(v.title) + "</h3>\n";
    for (const auto& p : v.paragraphs) {
        if (!p.text.empty()) out += "<p>" + html_escape(p.text) + "</p>\n";
        if (!p.items.empty()) {
            out += "<ul>\n";
            for (const auto& i : p.items) out += "<li>" + html_escape(i) + "</li>\n";
            out += "</ul>\n";
        }
    }
    out += "</div>\n";
}

}  // namespace

Texts render_texts(const TextFacts& f) {
    Version it = italian(f), en = english(f);
    Texts t;
    t.title = it.title;
    plain(t.plain, it);
    t.plain += "----------------------------------------------------------------------\n\n";
    plain(t.plain, en);
    t.html = "<html>\n<head><title>" + html_escape(it.title) + "</title></head>\n<body>\n";
    html(t.html, it, "it");
    t.html += "<hr>\n";
    html(t.html, en, "en");
    t.html += "</body>\n</html>\n";
    return t;
}

}  // namespace pecd::pec
