// TensorBoard event files written by us: TFRecord framing (length, masked CRC32C of the length,
// data, masked CRC32C of the data) around Event protos serialised with Debian's protobuf.
// TensorBoard itself reads them (tests/report/tensorboard_reader_test.py checks that).
#pragma once

#include <torch/types.h>

#include <cstdio>
#include <string>

namespace ebm::report {

class EventWriter {
 public:
  // Creates <dir>/events.out.tfevents.<unix time>.<host> and writes the file_version event.
  explicit EventWriter(const std::string& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  void add_scalar(const std::string& tag, double value, int64_t step);
  // images [N, C, H, W] as one grid (see make_grid), or [C, H, W].
  void add_image(const std::string& tag, const torch::Tensor& images, int64_t step);
  // The histogram of a tensor's finite values in `buckets` equal-width buckets between their
  // min and max (TensorBoard's Histograms and Distributions tabs); nothing when none is finite.
  void add_histogram(const std::string& tag, const torch::Tensor& values, int64_t step,
                     int64_t buckets = 30);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Frames one payload as a TFRecord (exposed for tests).
std::string tfrecord_frame(const std::string& data);

}  // namespace ebm::report
