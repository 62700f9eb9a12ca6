// The .expect golden file of a sample message (tests/samples/NAME.eml beside NAME.expect):
// what classify() must say about it. Written by `ndrguard scan --expect`, checked by
// tests/unit/samples_test.cpp; both use this one definition of the format.
//
// Lines "key: value" (all optional but class):
//   class: dsn                        the class
//   message_id: ID                    the first such line must be the first id reported;
//                                     each further one must be reported somewhere
//   recipient: ADDR ACTION STATUS     a recipient with that action and status ("-" = none)
//   reporting_mta: / original_from: / subject:   equal to the field
//   received_host: HOST / reason: TAG / flag: NAME   present in the list
//   known_failure: WHY                the detector is known to get this sample wrong: the
//                                     mismatches are printed, not failed; a sample that then
//                                     passes fails, so the marker is removed when fixed
//   note: TEXT                        for people
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ndrguard/detector/detector.hpp"

namespace ndrguard::detector {

// Every way the result differs from the expectation, one line each. known_failure is set when
// the expectation carries a known_failure line.
std::vector<std::string> expect_mismatches(const result& r, std::string_view expect, bool& known_failure);

// The expectation that says everything the format can say about r, in a fixed order (class,
// message_id, recipient, reporting_mta, original_from, subject, received_host, reason, flag),
// followed by the known_failure and note lines of `previous` (the file being replaced; "" for a
// new one). nullopt when some value cannot be written on a line (a line break, a leading space,
// an address with a space): the file would not say what the detector says.
std::optional<std::string> expect_file(const result& r, std::string_view previous = {});

}  // namespace ndrguard::detector
