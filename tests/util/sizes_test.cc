// Checked sizes (products that cannot wrap, promises compared with what is there) and the
// regular-file check every reader goes through.
#include "ebm/util/sizes.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "ebm/util/files.h"
#include "tests/support/temp_dir.h"

using ebm::util::checked_bytes;
using ebm::util::checked_mul;

TEST(Sizes, ProductsThatWrapAreRefusedAndExactOnesKept) {
  EXPECT_EQ(checked_mul(uint64_t{1} << 32, uint64_t{1} << 31), uint64_t{1} << 63);
  EXPECT_FALSE(checked_mul(uint64_t{1} << 32, uint64_t{1} << 32));
  EXPECT_EQ(checked_bytes({60000, 28, 28}, 1), uint64_t{47040000});
  EXPECT_EQ(checked_bytes({}, 8), uint64_t{8});            // a scalar
  EXPECT_EQ(checked_bytes({0, int64_t{1} << 62}, 8), 0u);  // empty arrays are fine
  // 2^62 x 4 x 8 bytes = 2^67: wraps to 2^3 in 64 bits, so a plain product would accept it.
  EXPECT_FALSE(checked_bytes({int64_t{1} << 62, 4}, 8));
  EXPECT_FALSE(checked_bytes({int64_t{1} << 61, 4}, 1));  // 2^63 does not fit in int64_t
  EXPECT_FALSE(checked_bytes({3, -1}, 1));
}

TEST(Sizes, PromisesBeyondTheAvailableBytesAreNamed) {
  EXPECT_FALSE(ebm::util::exceeds_available(80, 80, "x"));
  const auto e = ebm::util::exceeds_available(81, 80, "shape (81,)");
  ASSERT_TRUE(e);
  EXPECT_EQ(*e, "shape (81,) needs 81 bytes, only 80 are there");
}

TEST(Files, OnlyRegularFilesAreRead) {
  const auto dir = ebm::testing::FreshTempDir("util_files");
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto message = [](const std::string& path) {
    try {
      ebm::util::read_file(path);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("(read)");
  };
  EXPECT_EQ(message(fifo), fifo + ": a FIFO, where a regular file is needed");
  EXPECT_EQ(message(dir), dir + ": a directory, where a regular file is needed");
  EXPECT_EQ(message("/dev/zero"), "/dev/zero: a character device, where a regular file is needed");
  ebm::util::write_file_atomic(dir + "/plain", "abc");
  EXPECT_EQ(ebm::util::read_file(dir + "/plain"), "abc");
  EXPECT_EQ(ebm::util::read_file_size(dir + "/plain"), 3u);
}
