// Next hops and listeners as Postfix writes them.
#include <doctest/doctest.h>

#include "ndrguard/smtp/address.hpp"

using namespace ndrguard::smtp;

TEST_CASE("host:port") {
    CHECK(split_host_port("127.0.0.1:10026") == std::make_pair(std::string("127.0.0.1"), std::uint16_t(10026)));
    CHECK(split_host_port("[::1]:25") == std::make_pair(std::string("::1"), std::uint16_t(25)));
    CHECK_FALSE(split_host_port("127.0.0.1"));
    CHECK_FALSE(split_host_port("::1:25"));
    CHECK_FALSE(split_host_port("host:0"));
    CHECK_FALSE(split_host_port("host:70000"));
}
