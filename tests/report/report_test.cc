// Report formats against independent values: CRC32C test vectors, TFRecord framing bytes, PNG
// round trips through libpng's decoder, grid layout.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <stdexcept>
#include <string>

#include "ebm/report/png.h"
#include "ebm/report/progress.h"
#include "ebm/report/tensorboard.h"
#include "ebm/util/crc32c.h"
#include "ebm/util/files.h"

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(ebm::util::crc32c("123456789"), 0xE3069283u);  // the standard check value
  EXPECT_EQ(ebm::util::crc32c(""), 0u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(ebm::util::crc32c(zeros), 0x8A9136AAu);  // RFC 3720 B.4
  std::string inc;
  for (int i = 0; i < 32; ++i) inc.push_back(static_cast<char>(i));
  EXPECT_EQ(ebm::util::crc32c(inc), 0x46DD794Eu);
  // Incremental == one shot.
  EXPECT_EQ(ebm::util::crc32c(inc.data() + 5, 27, ebm::util::crc32c(inc.data(), 5)),
            ebm::util::crc32c(inc));
}

TEST(TensorBoard, TfrecordFrameLayout) {
  const std::string data = "abc";
  const std::string framed = ebm::report::tfrecord_frame(data);
  ASSERT_EQ(framed.size(), 8u + 4u + 3u + 4u);
  EXPECT_EQ(framed.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v |= static_cast<uint32_t>(static_cast<unsigned char>(framed[at + i])) << (8 * i);
    return v;
  };
  EXPECT_EQ(u32(8), ebm::util::masked_crc32c(framed.data(), 8));
  EXPECT_EQ(framed.substr(12, 3), "abc");
  const uint32_t crc = ebm::util::crc32c("abc");
  EXPECT_EQ(u32(15), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST(Png, RoundTripGreyRgbAndRgba) {
  torch::manual_seed(0);
  for (int c : {1, 3, 4}) {
    auto img = torch::randint(0, 256, {7, 5, c}, torch::kUInt8);
    auto back = ebm::report::decode_png(ebm::report::encode_png(img));
    EXPECT_TRUE(torch::equal(img, back)) << c << " channels";
  }
  EXPECT_THROW(ebm::report::decode_png("not a png at all"), std::runtime_error);
  auto good = ebm::report::encode_png(torch::zeros({4, 4, 1}, torch::kUInt8));
  EXPECT_THROW(ebm::report::decode_png(good.substr(0, good.size() / 2)), std::runtime_error);
}

TEST(Png, GridPlacesEachImageWithPadding) {
  auto imgs = torch::zeros({3, 1, 2, 2});
  imgs[1].fill_(1.0);
  imgs[2].fill_(0.5);
  auto g = ebm::report::make_grid(imgs, 2, 1, 9);  // 2 per row -> 2 rows
  ASSERT_EQ(g.sizes(), torch::IntArrayRef({1 + 2 * 3, 1 + 2 * 3, 1}));
  EXPECT_EQ(g[1][1][0].item<uint8_t>(), 0);    // image 0
  EXPECT_EQ(g[1][4][0].item<uint8_t>(), 255);  // image 1
  EXPECT_EQ(g[4][1][0].item<uint8_t>(), 128);  // image 2 (0.5 -> 127.5 rounds to 128)
  EXPECT_EQ(g[0][0][0].item<uint8_t>(), 9);    // padding
  EXPECT_EQ(g[4][4][0].item<uint8_t>(), 9);    // the empty fourth cell
}

TEST(Progress, LineShowsPercentRateAndEta) {
  ebm::report::Progress p("train", 200, nullptr);
  const auto line = p.line(50, "loss=1");
  EXPECT_NE(line.find("train  25% 50/200"), std::string::npos) << line;
  EXPECT_NE(line.find("it/s]"), std::string::npos) << line;
  EXPECT_NE(line.find("loss=1"), std::string::npos) << line;
  EXPECT_EQ(ebm::report::format_duration(3725), "1:02:05");
  EXPECT_EQ(ebm::report::format_duration(65), "01:05");
}
