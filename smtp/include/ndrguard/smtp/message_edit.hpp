// Small edits of a message on its way through the filter: is a header there, add one at the
// top, make a Message-ID. Pure; the message is CRLF text as the SMTP server produced it.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace ndrguard::smtp {

// The header section (up to the first empty line, or all of it).
std::string_view header_section(std::string_view message);

// True if the header section has a field of that name (case-insensitive).
bool has_header(std::string_view message, std::string_view name);

// The value of the first such field, unfolded and trimmed ("" when absent).
std::string header_value(std::string_view message, std::string_view name);

// Removes every field of one of these names (case-insensitive, "Name :" too) from the header
// section, with its folded continuation lines; the body is never touched. Returns how many
// fields went (0: the message was not copied). The filter's own headers (X-NDRGuard, the
// release's X-NDRGuard-Released) are removed before they are added: a sender cannot forge them.
std::size_t remove_fields(std::string& message, std::initializer_list<std::string_view> names);

// "Name: value\r\n" + message.
std::string with_header_on_top(std::string_view message, std::string_view name, std::string_view value);

// "<20260302T091500.9f86d081884c7d65@host>" from the time and 64 random bits.
std::string make_message_id(std::chrono::system_clock::time_point now, std::uint64_t random, std::string_view host);

}  // namespace ndrguard::smtp
