#include "ebm/core/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "ebm/core/archive_file.h"
#include "ebm/util/archive_seal.h"
#include "ebm/util/files.h"
#include "ebm/util/json.h"

namespace ebm {

namespace fs = std::filesystem;

namespace {

std::string ckpt_name(int64_t step) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "ckpt-%010ld.pt", static_cast<long>(step));
  return buf;
}

// The metric of best.json ({"step": N, "metric": x}); a file that is not such an object is an
// error naming it (never a silently forgotten best).
double read_best_metric(const std::string& path) {
  try {
    const auto best = util::parse_json(util::read_file(path), path);
    return best.at("metric").number();
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(
        path + ": not a best-checkpoint record ({\"step\": N, \"metric\": x}): " + e.what());
  }
}

// A writer killed inside util::write_file_atomic leaves its temporary ("ckpt-N.pt.tmp.<pid>")
// behind, never a half-written checkpoint; one manager writes a folder, so any found on start is
// from a dead process.
void remove_stale_temporaries(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) {
      std::error_code ec;
      fs::remove(e.path(), ec);
    }
  }
}

}  // namespace

CheckpointManager::CheckpointManager(std::string dir, int64_t keep_last, CheckpointWrites writes)
    : dir_(std::move(dir)), keep_last_(keep_last), writes_(writes) {
  if (keep_last_ < 1) throw std::invalid_argument("checkpoint keep_last must be >= 1");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("cannot create " + dir_ + ": " + ec.message());
  remove_stale_temporaries(dir_);
  const std::string best_file = dir_ + "/best.json";
  if (fs::exists(best_file)) best_ = read_best_metric(best_file);
}

std::vector<std::string> CheckpointManager::list() const {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir_)) {
    const auto name = e.path().filename().string();
    if (name.rfind("ckpt-", 0) == 0 && e.path().extension() == ".pt")
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::string> CheckpointManager::latest() const {
  auto all = list();
  if (all.empty()) return std::nullopt;
  return all.back();
}

CheckpointManager::~CheckpointManager() {
  try {
    wait();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: checkpoint write failed: %s\n", e.what());
  }
}

void CheckpointManager::wait() {
  if (!pending_.valid()) return;
  auto done = std::move(pending_);
  done.get();
}

std::string CheckpointManager::save(
    int64_t step, const std::function<void(torch::serialize::OutputArchive&)>& fill,
    std::optional<double> metric) {
  wait();
  torch::serialize::OutputArchive archive;
  fill(archive);
  std::ostringstream bytes;
  archive.save_to(bytes);
  if (writes_ == CheckpointWrites::kInline) {
    write(step, bytes.str(), metric);
  } else {
    pending_ = std::async(std::launch::async,
                          [this, step, metric, data = bytes.str()] { write(step, data, metric); });
  }
  return dir_ + "/" + ckpt_name(step);
}

void CheckpointManager::write(int64_t step, const std::string& bytes,
                              std::optional<double> metric) {
  const std::string data = util::seal_archive(bytes);
  const std::string path = dir_ + "/" + ckpt_name(step);
  util::write_file_atomic(path, data);
  if (metric && (!best_ || *metric < *best_)) {
    util::write_file_atomic(dir_ + "/best.pt", data);
    const auto best = util::Json::object().set("step", step).set("metric", *metric).compact();
    util::write_file_atomic(dir_ + "/best.json", best.dump() + "\n");
    best_ = metric;
  }
  auto all = list();
  while (static_cast<int64_t>(all.size()) > keep_last_) {
    fs::remove(all.front());
    all.erase(all.begin());
  }
}

void CheckpointManager::load(const std::string& path, torch::serialize::InputArchive& archive,
                             torch::Device device) {
  if (!fs::exists(path)) throw std::runtime_error(path + ": checkpoint not found");
  read_archive_file(path, archive, device);
}

}  // namespace ebm
