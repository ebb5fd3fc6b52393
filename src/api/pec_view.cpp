// pec_view.cpp - the store's own answers about PEC status and verification (see pec_view.hpp)
#include "api/pec_view.hpp"

namespace pecd::api {

std::string StorePecView::status(const MessageHeaders& h) const {
    if (h.pec_type == "ordinary") return "ordinary";
    if (h.pec_type == "posta-certificata" || h.pec_type == "errore") return "delivered";
    return "receipt";
}

Verdict StorePecView::verify(std::string_view, const MessageHeaders& h) const {
    if (h.pec_type == "ordinary")
        return {"not-pec", "the message has neither X-Trasporto nor X-Ricevuta: it is not a PEC message", {}};
    return {"unavailable",
            "signature and daticert verification are not available in this build (PEC engine not linked); "
            "the type shown comes from the message headers",
            {{"pec_type", h.pec_type}}};
}

}  // namespace pecd::api
