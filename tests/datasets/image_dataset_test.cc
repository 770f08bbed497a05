// Image readers on files the test writes with known pixels and labels, on malformed files, and on
// the real Fashion-MNIST of Debian's dataset-fashion-mnist.
#include "datasets/image/image_dataset.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <utility>
#include <vector>

#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using ebm::data::DatasetError;

namespace {

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

void WriteGz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// n images of h x w, pixel (i, y, x) = (i * 7 + y * w + x) % 256; label i % 10.
std::pair<std::string, std::string> Idx(uint32_t n, uint32_t h, uint32_t w) {
  std::string img = Be32(0x803) + Be32(n) + Be32(h) + Be32(w), lab = Be32(0x801) + Be32(n);
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t p = 0; p < h * w; ++p) img.push_back(static_cast<char>((i * 7 + p) % 256));
    lab.push_back(static_cast<char>(i % 10));
  }
  return {img, lab};
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const DatasetError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Idx, ReadsPixelsAndLabelsRawAndGzipped) {
  const auto dir = ebm::testing::FreshTempDir("idx");
  auto [img, lab] = Idx(12, 4, 3);
  Write(dir + "/train-images-idx3-ubyte", img);
  Write(dir + "/train-labels-idx1-ubyte", lab);
  WriteGz(dir + "/t10k-images-idx3-ubyte.gz", img);
  WriteGz(dir + "/t10k-labels-idx1-ubyte.gz", lab);
  for (const char* split : {"train", "test"}) {
    auto ds = ebm::data::load_mnist_folder(dir, split, "fashion_mnist");
    ASSERT_EQ(ds.images.sizes(), torch::IntArrayRef({12, 1, 4, 3})) << split;
    EXPECT_EQ(ds.images[5][0][2][1].item<uint8_t>(), (5 * 7 + 2 * 3 + 1) % 256);
    EXPECT_EQ(ds.labels[7].item<int64_t>(), 7);
    EXPECT_EQ(ds.class_names[9], "Ankle boot");
    EXPECT_EQ(ds.split, split);
  }
  fs::remove_all(dir);
}

TEST(Idx, MalformedFilesNameTheFileAndTheProblem) {
  const auto dir = ebm::testing::FreshTempDir("idxbad");
  auto [img, lab] = Idx(4, 2, 2);
  Write(dir + "/lab", lab);
  Write(dir + "/trunc", img.substr(0, img.size() - 1));
  EXPECT_NE(ErrorOf([&] {
              ebm::data::load_idx(dir + "/trunc", dir + "/lab");
            }).find("header says 4 images of 2x2 = 16 bytes, file holds 15"),
            std::string::npos);
  std::string wrong = img;
  wrong[3] = 0x01;
  Write(dir + "/magic", wrong);
  auto m = ErrorOf([&] { ebm::data::load_idx(dir + "/magic", dir + "/lab"); });
  EXPECT_NE(m.find(dir + "/magic: IDX images need magic 0x00000803"), std::string::npos) << m;
  EXPECT_NE(m.find("found 0x00000801"), std::string::npos) << m;
  Write(dir + "/img", img);
  std::string bad_label = lab;
  bad_label[8 + 2] = 10;
  Write(dir + "/badlab", bad_label);
  EXPECT_NE(ErrorOf([&] {
              ebm::data::load_idx(dir + "/img", dir + "/badlab", std::vector<std::string>(10, "c"));
            }).find("label 10 of item 2 is out of range [0, 10)"),
            std::string::npos);
  Write(dir + "/short", std::string("\0\0", 2));
  EXPECT_NE(
      ErrorOf([&] { ebm::data::load_idx(dir + "/short", dir + "/lab"); }).find("needs 16 bytes"),
      std::string::npos);
  // A gzip stream cut in half.
  WriteGz(dir + "/full.gz", img + std::string(5000, 'x'));
  std::ifstream in(dir + "/full.gz", std::ios::binary);
  std::string gz((std::istreambuf_iterator<char>(in)), {});
  Write(dir + "/cut.gz", gz.substr(0, gz.size() / 2));
  EXPECT_NE(ErrorOf([&] { ebm::data::read_maybe_gzipped(dir + "/cut.gz"); }).find("truncated gzip"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf([&] { ebm::data::load_idx(dir + "/missing", dir + "/lab"); }).find("cannot open"),
      std::string::npos);
  fs::remove_all(dir);
}

TEST(Cifar10, PlaneOrderLabelsAndClassNames) {
  const auto dir = ebm::testing::FreshTempDir("cifar");
  auto record = [](int label, int seed) {
    std::string r(1, static_cast<char>(label));
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) r.push_back(static_cast<char>((seed + c * 50 + p) % 256));
    return r;
  };
  for (int b = 1; b <= 5; ++b)
    Write(dir + "/data_batch_" + std::to_string(b) + ".bin", record(b, b) + record(9, 100 + b));
  Write(dir + "/test_batch.bin", record(3, 7));
  Write(dir + "/batches.meta.txt",
        "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
  auto train = ebm::data::load_cifar10(dir, "train");
  ASSERT_EQ(train.images.sizes(), torch::IntArrayRef({10, 3, 32, 32}));
  EXPECT_EQ(train.labels[4].item<int64_t>(), 3);  // batch 3, first record
  // Channel 1 (G) of image 2 (batch 2, first record), pixel (row 1, col 2) = index 34.
  EXPECT_EQ(train.images[2][1][1][2].item<uint8_t>(), (2 + 50 + 34) % 256);
  EXPECT_EQ(train.class_names[3], "cat");
  auto test = ebm::data::load_cifar10(dir, "test");
  EXPECT_EQ(test.size(), 1);
  Write(dir + "/test_batch.bin", record(3, 7).substr(0, 3000));
  EXPECT_NE(ErrorOf([&] { ebm::data::load_cifar10(dir, "test"); }).find("not a positive multiple"),
            std::string::npos);
  Write(dir + "/test_batch.bin", record(12, 7));
  EXPECT_NE(
      ErrorOf([&] { ebm::data::load_cifar10(dir, "test"); }).find("has label 12, expected < 10"),
      std::string::npos);
  fs::remove_all(dir);
}

TEST(Cifar100, FineAndCoarseLabels) {
  const auto dir = ebm::testing::FreshTempDir("c100");
  std::string r{static_cast<char>(4), static_cast<char>(77)};
  r += std::string(3072, '\x05');
  Write(dir + "/train.bin", r + r);
  auto fine = ebm::data::load_cifar100(dir, "train", "fine");
  EXPECT_EQ(fine.labels[1].item<int64_t>(), 77);
  EXPECT_EQ(fine.num_classes(), 100);
  auto coarse = ebm::data::load_cifar100(dir, "train", "coarse");
  EXPECT_EQ(coarse.labels[0].item<int64_t>(), 4);
  EXPECT_EQ(coarse.num_classes(), 20);
  fs::remove_all(dir);
}

TEST(FashionMnist, RealDataFromTheDebianPackage) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir)) GTEST_SKIP() << dir << " missing (Debian package dataset-fashion-mnist)";
  auto train = ebm::data::load_image_dataset("fashion_mnist", dir, "train");
  auto test = ebm::data::load_image_dataset("fashion_mnist", dir, "test");
  EXPECT_EQ(train.images.sizes(), torch::IntArrayRef({60000, 1, 28, 28}));
  EXPECT_EQ(test.size(), 10000);
  auto counts = torch::bincount(train.labels);
  EXPECT_TRUE(torch::equal(counts, torch::full({10}, 6000, torch::kLong)));
  // Garments on a dark background: the border is darker than the centre.
  auto f = ebm::data::to_float(train.images);
  EXPECT_LT(f.index({torch::indexing::Slice(), 0, 0}).mean().item<float>(),
            f.index({torch::indexing::Slice(), 0, 14, 14}).mean().item<float>());
}
