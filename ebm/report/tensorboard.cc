#include "ebm/report/tensorboard.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "ebm/report/png.h"
#include "ebm/report/tensorboard.pb.h"
#include "ebm/util/crc32c.h"

namespace ebm::report {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// An event at `step` now, holding one summary value tagged `tag`, which the caller fills in.
tensorboard::SummaryValue* new_value(tensorboard::Event& event, const std::string& tag,
                                     int64_t step) {
  event.set_wall_time(now_seconds());
  event.set_step(step);
  auto* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  return v;
}

}  // namespace

std::string tfrecord_frame(const std::string& data) {
  std::string out;
  const uint64_t len = data.size();
  std::string len_bytes;
  for (int i = 0; i < 8; ++i) len_bytes.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  out += len_bytes;
  put_u32(out, util::masked_crc32c(len_bytes.data(), len_bytes.size()));
  out += data;
  put_u32(out, util::masked_crc32c(data.data(), data.size()));
  return out;
}

EventWriter::EventWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create " + dir + ": " + ec.message());
  char host[256] = "localhost";
  ::gethostname(host, sizeof(host) - 1);
  path_ = dir + "/events.out.tfevents." + std::to_string(static_cast<int64_t>(now_seconds())) +
          "." + host;
  file_ = std::fopen(path_.c_str(), "ab");
  if (!file_) throw std::runtime_error("cannot create " + path_ + ": " + std::strerror(errno));
  tensorboard::Event event;
  event.set_wall_time(now_seconds());
  event.set_file_version("brain.Event:2");
  write_record(event.SerializeAsString());
  flush();
}

EventWriter::~EventWriter() {
  if (file_) std::fclose(file_);
}

void EventWriter::write_record(const std::string& data) {
  const std::string framed = tfrecord_frame(data);
  if (std::fwrite(framed.data(), 1, framed.size(), file_) != framed.size())
    throw std::runtime_error("cannot write " + path_ + ": " + std::strerror(errno));
}

void EventWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  tensorboard::Event event;
  new_value(event, tag, step)->set_simple_value(static_cast<float>(value));
  write_record(event.SerializeAsString());
}

void EventWriter::add_histogram(const std::string& tag, const torch::Tensor& values, int64_t step,
                                int64_t buckets) {
  auto v = values.detach().to(torch::kCPU, torch::kFloat64).flatten();
  v = v.masked_select(v.isfinite());
  if (v.numel() == 0 || buckets < 1) return;
  const double lo = v.min().item<double>(), hi = v.max().item<double>();
  tensorboard::Event event;
  auto* h = new_value(event, tag, step)->mutable_histo();
  h->set_min(lo);
  h->set_max(hi);
  h->set_num(static_cast<double>(v.numel()));
  h->set_sum(v.sum().item<double>());
  h->set_sum_squares(v.pow(2).sum().item<double>());
  if (hi == lo) buckets = 1;
  const auto counts = torch::histc(v, buckets, lo, hi).contiguous();
  const auto count = counts.accessor<double, 1>();
  const double width = (hi - lo) / static_cast<double>(buckets);
  for (int64_t i = 0; i < buckets; ++i) {
    h->add_bucket_limit(i + 1 == buckets ? hi : lo + width * static_cast<double>(i + 1));
    h->add_bucket(count[i]);
  }
  write_record(event.SerializeAsString());
}

void EventWriter::add_image(const std::string& tag, const torch::Tensor& images, int64_t step) {
  auto grid = make_grid(images.dim() == 3 ? images.unsqueeze(0) : images, 0);
  tensorboard::Event event;
  auto* img = new_value(event, tag, step)->mutable_image();
  img->set_height(static_cast<int32_t>(grid.size(0)));
  img->set_width(static_cast<int32_t>(grid.size(1)));
  img->set_colorspace(static_cast<int32_t>(grid.size(2)));
  img->set_encoded_image_string(encode_png(grid));
  write_record(event.SerializeAsString());
  flush();
}

void EventWriter::flush() {
  if (file_) std::fflush(file_);
}

}  // namespace ebm::report
