// Downsampled ImageNet (npz, pickles of protocols 2, 4, 5), dSprites (npz, procedural), image
// folders (PNG, JPEG), SVHN (.mat) and transforms, on files written by NumPy, pickle, SciPy and
// Pillow (tests/datasets/make_image_fixtures.py) with patterns this test computes on its own.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "datasets/image/image_dataset.h"
#include "tests/support/temp_dir.h"

using namespace ebm::data;

namespace {

std::string g_dir;

class ImageFormats : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_dir = ebm::testing::FreshTempDir("image_formats");
    const std::string cmd = std::string(EBM_TEST_PYTHON) + " " + EBM_TEST_SOURCE_DIR +
                            "/tests/datasets/make_image_fixtures.py " + g_dir;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
};

// Image k, flat value j: (7 k + 3 j) % 256; label 1 + 37 k % 1000 (before the shift to 0..999).
void ExpectImagenet(const ImageDataset& ds, const std::vector<int64_t>& ks, int side) {
  ASSERT_EQ(ds.size(), static_cast<int64_t>(ks.size()));
  ASSERT_EQ(ds.images.sizes(),
            (std::vector<int64_t>{static_cast<int64_t>(ks.size()), 3, side, side}));
  const auto* p = ds.images.data_ptr<uint8_t>();
  const int64_t row = 3 * side * side;
  for (size_t i = 0; i < ks.size(); ++i) {
    for (int64_t j = 0; j < row; ++j) {
      ASSERT_EQ(p[i * row + j], (7 * ks[i] + 3 * j) % 256) << "image " << i << " value " << j;
    }
    EXPECT_EQ(ds.labels[static_cast<int64_t>(i)].item<int64_t>(), (37 * ks[i]) % 1000);
  }
  // Planes: value j = c * R^2 + y * R + x is channel c, row y, column x.
  EXPECT_EQ(ds.images[1][2][3][4].item<uint8_t>(),
            (7 * ks[1] + 3 * (2 * side * side + 3 * side + 4)) % 256);
}

template <typename Fn>
void ExpectError(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    FAIL() << "no error";
  } catch (const DatasetError& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

}  // namespace

TEST_F(ImageFormats, ImagenetNpzStoredAndCompressed) {
  ExpectImagenet(load_imagenet_downsampled(g_dir + "/imagenet_npz", "train"),
                 {0, 1, 2, 3, 4, 5, 6, 7}, 8);
  ExpectImagenet(load_imagenet_downsampled(g_dir + "/imagenet_npz", "val"), {100, 101, 102, 103},
                 8);
  ExpectImagenet(load_imagenet_downsampled(g_dir + "/imagenet_npz/train_data_batch_2.npz", "train"),
                 {5, 6, 7}, 8);
  ExpectError([] { load_imagenet_downsampled(g_dir + "/imagenet_npz", "train", 32); },
              {"8x8", "expected 32x32"});
}

TEST_F(ImageFormats, ImagenetPicklesOfProtocols245) {
  ExpectImagenet(load_imagenet_downsampled(g_dir + "/imagenet_pickle", "train"),
                 {0, 1, 2, 3, 4, 5, 6, 7}, 8);
  ExpectImagenet(load_imagenet_downsampled(g_dir + "/imagenet_pickle", "val"), {100, 101, 102, 103},
                 8);
}

TEST_F(ImageFormats, MalformedImagenetFilesAreRefusedWithTheirName) {
  const std::string bad = g_dir + "/bad/";
  ExpectError([&] { RestrictedPickle p(bad + "evil_pickle"); },
              {"evil_pickle", "posix.system", "not allowed"});
  ExpectError([&] { RestrictedPickle p(bad + "object_pickle"); }, {"object_pickle"});
  ExpectError([&] { RestrictedPickle p(bad + "truncated_pickle"); },
              {"truncated_pickle", "truncated"});
  ExpectError([&] { load_imagenet_downsampled(bad + "float_data.npz", "train"); },
              {"float_data.npz", "uint8", "<f4"});
  ExpectError([&] { load_imagenet_downsampled(bad + "label_zero.npz", "train"); },
              {"label_zero.npz", "label 0", "1..1000"});
  ExpectError([&] { load_imagenet_downsampled(bad + "truncated.npz", "train"); },
              {"truncated.npz"});
  ExpectError([&] { load_imagenet_downsampled(bad + "flipped.npz", "train"); },
              {"flipped.npz", "CRC-32"});
  ExpectError([&] { load_imagenet_downsampled(g_dir + "/folder", "train"); }, {"train_data_batch"});
}

TEST_F(ImageFormats, DspritesNpzAndProcedural) {
  const auto ds = load_dsprites(g_dir + "/dsprites.npz");
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{6, 1, 64, 64}));
  for (int64_t i = 0; i < 6; ++i) {
    // A 10 x 5 block of ones at rows i..i+9, columns 2i..2i+4, scaled to 255.
    EXPECT_EQ(ds.images[i].sum().item<int64_t>(), 50 * 255);
    EXPECT_EQ(ds.images[i][0][i][2 * i].item<uint8_t>(), 255);
    EXPECT_EQ(ds.images[i][0][i + 10][2 * i].item<uint8_t>(), 0);
    EXPECT_EQ(ds.labels[i].item<int64_t>(), i % 3);
    EXPECT_DOUBLE_EQ(ds.factors[i][5].item<double>(), (6.0 * i + 5) / 35.0);
  }
  EXPECT_EQ(ds.factor_names[3], "orientation");

  DSpritesSpec spec;
  spec.count = 300;
  spec.seed = 3;
  const auto g = generate_dsprites(spec);
  const auto g2 = generate_dsprites(spec);
  EXPECT_TRUE(torch::equal(g.images, g2.images));  // deterministic for a seed
  ASSERT_EQ(g.factors.size(1), 6);
  for (int64_t i = 0; i < spec.count; ++i) {
    const auto f = g.factors[i];
    const double scale = f[2].item<double>(), px = f[4].item<double>(), py = f[5].item<double>();
    const auto img = g.images[i][0].to(torch::kFloat64) / 255;
    // Area grows with scale squared (square 4r^2, ellipse pi r^2 / 2, heart in between).
    const double area = img.sum().item<double>(), r = 10 * scale;
    EXPECT_GT(area, 0.3 * r * r);
    EXPECT_LT(area, 4.5 * r * r);
    // The centre of mass sits at the sprite's position (8 + 48 p pixels), within 2.5 pixels.
    auto ys = torch::arange(64, torch::kFloat64).view({64, 1}) + 0.5;
    auto xs = torch::arange(64, torch::kFloat64).view({1, 64}) + 0.5;
    const double cy = (img * ys).sum().item<double>() / area,
                 cx = (img * xs).sum().item<double>() / area;
    EXPECT_NEAR(cx, 8 + 48 * px, 2.5) << i;
    if (g.labels[i].item<int64_t>() != 2) {  // hearts are not symmetric
      EXPECT_NEAR(cy, 8 + 48 * py, 2.5) << i;
    }
  }
  // Restricting factors restricts the data: small sprites in the left half only.
  spec.scale_max = 0.6;
  spec.pos_max = 0.5;
  const auto r = generate_dsprites(spec);
  EXPECT_LE(r.factors.select(1, 2).max().item<double>(), 0.6 + 1e-9);
  EXPECT_LE(r.factors.select(1, 4).max().item<double>(), 0.5 + 1e-9);
  EXPECT_EQ(r.images.slice(3, 40, 64).sum().item<int64_t>(), 0);
}

TEST_F(ImageFormats, ImageFolderPngAndJpeg) {
  const auto ds = load_image_folder(g_dir + "/folder", 3);
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(ds.labels[0].item<int64_t>(), 0);
  EXPECT_EQ(ds.labels[2].item<int64_t>(), 1);
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{3, 3, 4, 5}));
  // a.png: value (y, x, c) = 5 (15 y + 3 x + c) % 256.
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 5; ++x) {
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(ds.images[0][c][y][x].item<uint8_t>(), (5 * (15 * y + 3 * x + c)) % 256);
        EXPECT_EQ(ds.images[1][c][y][x].item<uint8_t>(),
                  (5 * (15 * y + 3 * x)) % 256);  // gray -> RGB
      }
    }
  }
  EXPECT_NEAR(ds.images[2].to(torch::kFloat32).mean().item<float>(), 200, 1.5);  // JPEG, lossy
  const auto gray = load_image_folder(g_dir + "/folder", 1, 8);
  ASSERT_EQ(gray.images.sizes(), (std::vector<int64_t>{3, 1, 8, 8}));
  EXPECT_NEAR(gray.images[2].to(torch::kFloat32).mean().item<float>(), 200, 1.5);
  ExpectError([] { load_image_folder(g_dir + "/svhn"); }, {"no .png"});
  ExpectError([] { load_image_folder(g_dir + "/bad/bad_png"); }, {"img.png", "PNG"});
  ExpectError([] { load_image_folder(g_dir + "/bad/bad_jpg"); }, {"img.jpg", "JPEG"});
  ExpectError([] { load_dsprites(g_dir + "/bad/dsprites_float.npz"); },
              {"dsprites_float.npz", "'imgs'", "<f4"});
}

TEST_F(ImageFormats, SvhnMatFiles) {
  const auto ds = load_svhn(g_dir + "/svhn", "train");
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{4, 3, 32, 32}));
  for (int k = 0; k < 4; ++k) {
    for (int h : {0, 7, 31}) {
      for (int w : {0, 5, 30}) {
        for (int c = 0; c < 3; ++c) {
          ASSERT_EQ(ds.images[k][c][h][w].item<uint8_t>(), (h + 2 * w + 50 * c + 9 * k) % 256);
        }
      }
    }
  }
  EXPECT_TRUE(torch::equal(ds.labels, torch::tensor({0, 1, 5, 0}, torch::kLong)));
  ExpectError([] { load_svhn(g_dir + "/svhn", "test"); }, {"test_32x32.mat"});
  ExpectError([] { load_svhn(g_dir + "/svhn", "valid"); }, {"split"});
}

TEST(ImageTransforms, DequantizeCropFlipResizeChannels) {
  auto gen = at::detail::createCPUGenerator(7);
  auto x = torch::arange(256, torch::kLong)
               .to(torch::kUInt8)
               .view({1, 1, 16, 16})
               .repeat({1000, 1, 1, 1});
  auto f = to_float_dequantized(x, gen);
  // x * 255/256 / 255 + U(0, 1/256): each value lies in [x/256, (x+1)/256].
  auto lo = x.to(torch::kFloat32) / 256;
  EXPECT_TRUE(f.ge(lo).all().item<bool>());
  EXPECT_TRUE(f.le(lo + 1.0 / 256).all().item<bool>());  // float32 rounding may reach the bound
  EXPECT_NEAR((f - lo).mean().item<double>(), 0.5 / 256, 0.01 / 256);
  auto flipped = random_flip(x.to(torch::kFloat32), gen);
  const auto same = flipped.eq(x.to(torch::kFloat32)).flatten(1).all(1);
  const double frac = same.to(torch::kFloat32).mean().item<double>();
  EXPECT_NEAR(frac, 0.5, 0.06);
  EXPECT_TRUE(torch::equal(flipped[same.logical_not().nonzero()[0][0]],
                           x[0].to(torch::kFloat32).flip({2})));
  auto crop = random_crop(x.to(torch::kFloat32), 16, 2, gen);
  ASSERT_EQ(crop.sizes(), x.sizes());
  // Each crop is the image shifted by (dy, dx) in [-2, 2]: the sum loses only border rows/columns.
  EXPECT_TRUE(crop.flatten(1).sum(1).le(x[0].to(torch::kFloat32).sum()).all().item<bool>());
  auto up = resize(torch::full({1, 3, 4, 4}, 77, torch::kUInt8), 9, 7);
  EXPECT_EQ(up.sizes(), (std::vector<int64_t>{1, 3, 9, 7}));
  EXPECT_TRUE(up.eq(77).all().item<bool>());
  auto rgb = torch::zeros({1, 3, 2, 2}, torch::kUInt8);
  rgb.select(1, 0).fill_(100);
  EXPECT_EQ(to_channels(rgb, 1)[0][0][0][0].item<uint8_t>(), 30);  // 0.299 * 100 rounded
  EXPECT_EQ(to_channels(to_channels(rgb, 1), 3).size(1), 3);
}
