// The .expect golden format (detector/include/ndrguard/detector/expect.hpp): what is written
// is what is read back, people's lines are kept, and what cannot be written is refused.
#include <doctest/doctest.h>

#include "ndrguard/detector/expect.hpp"

namespace det = ndrguard::detector;

namespace {

det::result a_dsn() {
    det::result r;
    r.klass = det::message_class::dsn;
    r.message_ids = {"first@example.org", "second@example.org"};
    det::recipient_report failed;
    failed.address = "bob@example.net";
    failed.action = det::recipient_action::failed;
    failed.status = "5.1.1";
    det::recipient_report unknown;
    unknown.address = "carol@example.net";
    r.recipients = {failed, unknown};
    r.reporting_mta = "mx.example.net";
    r.subject = "Undelivered Mail Returned to Sender";
    r.received_hosts = {"mail.example.org"};
    r.reasons = {"dsn.rfc3464", "ref.msgid.rfc822"};
    r.flags = det::flag_bad_encoding;
    return r;
}

}  // namespace

TEST_CASE("expect_file says everything, in a fixed order, and reads back without a mismatch") {
    auto r = a_dsn();
    auto file = det::expect_file(r);
    REQUIRE(file);
    CHECK(*file ==
          "class: dsn\n"
          "message_id: first@example.org\n"
          "message_id: second@example.org\n"
          "recipient: bob@example.net failed 5.1.1\n"
          "recipient: carol@example.net - -\n"
          "reporting_mta: mx.example.net\n"
          "subject: Undelivered Mail Returned to Sender\n"
          "received_host: mail.example.org\n"
          "reason: dsn.rfc3464\n"
          "reason: ref.msgid.rfc822\n"
          "flag: bad_encoding\n");
    bool known_failure = false;
    CHECK(det::expect_mismatches(r, *file, known_failure).empty());
    CHECK_FALSE(known_failure);

    r.message_ids = {"second@example.org", "first@example.org"};  // another first id
    CHECK(det::expect_mismatches(r, *file, known_failure).size() == 1);
}

TEST_CASE("expect_file keeps the note and known_failure lines of the file it replaces") {
    auto file = det::expect_file(a_dsn(), "class: ndr\nnote: why this sample\nreason: x\nknown_failure: see #9\n");
    REQUIRE(file);
    CHECK(file->ends_with("flag: bad_encoding\nnote: why this sample\nknown_failure: see #9\n"));
    CHECK(file->find("class: ndr") == std::string::npos);
}

TEST_CASE("expect_file refuses a value the format cannot carry") {
    auto r = a_dsn();
    r.subject = "two\nlines";
    CHECK_FALSE(det::expect_file(r));
    r = a_dsn();
    r.recipients.front().address = "bob smith@example.net";
    CHECK_FALSE(det::expect_file(r));
    r = a_dsn();
    r.recipients.front().address.clear();
    CHECK_FALSE(det::expect_file(r));
}
