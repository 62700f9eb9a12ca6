// What the files of `ndrguard serve` share: namespace aliases and the log's helpers.
#pragma once

#include <boost/asio.hpp>
#include <string>
#include <string_view>

#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/held_items.hpp"
#include "ndrguard/quarantine/sent_log.hpp"
#include "ndrguard/quarantine/storm.hpp"
#include "ndrguard/smtp/address.hpp"
#include "ndrguard/smtp/client.hpp"
#include "ndrguard/smtp/message_edit.hpp"
#include "ndrguard/smtp/server.hpp"

namespace ndrguard::filter {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
namespace det = ndrguard::detector;
namespace q = ndrguard::quarantine;
using smtp::transaction;
using smtp::smtp_reply;
using smtp::smtp_client_session;
using smtp::server_limits;
using smtp::smtp_server_session;
using smtp::remove_fields;
using smtp::with_header_on_top;
using smtp::queue_id_of;
using smtp::split_host_port;
using smtp::header_value;
using smtp::make_message_id;
using smtp::has_header;
using smtp::well_formed_address;
using smtp::recipient;

inline std::string xforward_value(const transaction& t, std::string_view name) {
    for (const auto& [k, v] : t.xforward)
        if (k == name) return v;
    return {};
}

// Log values are hostile input: one line, no spaces that would split key=value pairs.
inline std::string log_safe(std::string_view v, std::size_t max = 200) {
    std::string out;
    for (char c : v.substr(0, max)) out.push_back((static_cast<unsigned char>(c) <= ' ' || c == '"') ? '_' : c);
    return out.empty() ? "-" : out;
}

}  // namespace ndrguard::filter
