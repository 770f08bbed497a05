#include "plugin/recorder/recorder.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>
#include <utility>

#include "plugin/common/plugin_util.h"

namespace ebm::recorder {
namespace fs = std::filesystem;
using trajectory::FileHeader;

namespace {

std::atomic<uint64_t> g_next_episode_id{0};
std::atomic<uint64_t> g_next_shard{0};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string sanitize(std::string s) {
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') c = '_';
  }
  return s.empty() ? "model" : s;
}

}  // namespace

// One open trajectory file, shared by every recorder of the process that writes to the same path.
class SharedWriter {
 public:
  SharedWriter(const std::string& path, const FileHeader& header, trajectory::SyncPolicy sync)
      : writer_(path, header, sync, /*append=*/true) {}
  void append(const trajectory::Episode& e) {
    std::lock_guard<std::mutex> lock(mu_);
    writer_.append(e);
  }
  const FileHeader& header() const { return writer_.header(); }

  // The writer for `path`, opened on first use and shared while any recorder holds it. Throws
  // when the open file belongs to another model or layout.
  static std::shared_ptr<SharedWriter> for_path(const std::string& path, const FileHeader& header,
                                                trajectory::SyncPolicy sync) {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto& slot = registry()[key(path)];
    if (auto w = slot.lock()) {
      trajectory::check_compatible(w->header(), header, path);
      return w;
    }
    auto w = std::make_shared<SharedWriter>(path, header, sync);
    slot = w;
    return w;
  }

  // Whether recorders with `header` may append to `path`: checked against the writer this process
  // has open for it, else against the file's header. Under the registry lock, so a file another
  // thread is creating right now (header not yet written) is never mistaken for a foreign one.
  static void check_path(const std::string& path, const FileHeader& header) {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = registry().find(key(path));
    if (it != registry().end()) {
      if (auto w = it->second.lock()) {
        trajectory::check_compatible(w->header(), header, path);
        return;
      }
    }
    std::error_code ec;
    if (fs::exists(path, ec))
      trajectory::check_compatible(trajectory::read_file_header(path), header, path);
  }

 private:
  static std::mutex& registry_mutex() {
    static std::mutex mu;
    return mu;
  }
  static std::map<std::string, std::weak_ptr<SharedWriter>>& registry() {
    static std::map<std::string, std::weak_ptr<SharedWriter>> r;
    return r;
  }
  static std::string key(const std::string& path) {
    return fs::absolute(path).lexically_normal().string();
  }
  std::mutex mu_;
  trajectory::TrajectoryWriter writer_;
};

std::optional<std::vector<FieldSource>> parse_fields(const mjModel* m, const std::string& text,
                                                     std::string* error) {
  using K = FieldSource::Kind;
  std::vector<FieldSource> out;
  std::string spaced = text;
  for (char& c : spaced) {
    if (c == ',') c = ' ';
  }
  std::istringstream in(spaced);
  std::string tok;
  auto element_names = [&](int type, int n, int per) {
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i) {
      for (int k = 0; k < per; ++k) {
        names.push_back(plugin::name_of(m, type, i) +
                        (per > 1 ? "[" + std::to_string(k) + "]" : ""));
      }
    }
    return names;
  };
  while (in >> tok) {
    FieldSource f;
    f.name = tok;
    if (tok == "time") {
      f.kind = K::kTime, f.size = 1;
    } else if (tok == "qpos") {
      f.kind = K::kQpos, f.size = m->nq;
      // Per-coordinate names: the joint's name, with [k] for multi-coordinate joints.
      for (int j = 0; j < m->njnt; ++j) {
        const int n = m->jnt_type[j] == mjJNT_FREE ? 7 : m->jnt_type[j] == mjJNT_BALL ? 4 : 1;
        for (int k = 0; k < n; ++k) {
          f.element_names.push_back(plugin::name_of(m, mjOBJ_JOINT, j) +
                                    (n > 1 ? "[" + std::to_string(k) + "]" : ""));
        }
      }
    } else if (tok == "qvel" || tok == "qacc") {
      f.kind = tok == "qvel" ? K::kQvel : K::kQacc, f.size = m->nv;
      for (int v = 0; v < m->nv; ++v)
        f.element_names.push_back(plugin::name_of(m, mjOBJ_JOINT, m->dof_jntid[v]));
    } else if (tok == "act") {
      f.kind = K::kAct, f.size = m->na;
    } else if (tok == "ctrl") {
      f.kind = K::kCtrl, f.size = m->nu;
      f.element_names = element_names(mjOBJ_ACTUATOR, m->nu, 1);
    } else if (tok == "sensordata") {
      f.kind = K::kSensordata, f.size = m->nsensordata;
    } else if (tok == "mocap_pos") {
      f.kind = K::kMocapPos, f.size = 3 * m->nmocap;
    } else if (tok == "mocap_quat") {
      f.kind = K::kMocapQuat, f.size = 4 * m->nmocap;
    } else if (tok.rfind("sensor:", 0) == 0 || tok.rfind("site:", 0) == 0) {
      const bool sensor = tok[1] == 'e';
      const std::string name = tok.substr(tok.find(':') + 1);
      const int id = mj_name2id(m, sensor ? mjOBJ_SENSOR : mjOBJ_SITE, name.c_str());
      if (id < 0) {
        *error =
            "no " + std::string(sensor ? "sensor" : "site") + " named '" + name + "' in the model";
        return std::nullopt;
      }
      f.kind = sensor ? K::kSensor : K::kSite;
      f.size = sensor ? m->sensor_dim[id] : 3;
      f.index = sensor ? m->sensor_adr[id] : id;
    } else {
      *error = "unknown field '" + tok +
               "' (known: time qpos qvel act ctrl qacc sensordata mocap_pos mocap_quat "
               "sensor:<name> site:<name>)";
      return std::nullopt;
    }
    for (const auto& g : out) {
      if (g.name == f.name) {
        *error = "field '" + tok + "' listed twice";
        return std::nullopt;
      }
    }
    out.push_back(std::move(f));
  }
  if (out.empty()) {
    *error = "no fields listed";
    return std::nullopt;
  }
  return out;
}

std::optional<RecorderConfig> RecorderConfig::FromModel(const mjModel* m, int instance) {
  const plugin::Attributes attributes(m, instance, kPluginName);
  RecorderConfig c;
  c.path = attributes.text(kAttrPath);
  if (c.path.empty()) {
    return attributes.fail(kAttrPath, "missing; give an output file (*.ebmtraj) or directory");
  }
  c.directory_mode = !ends_with(c.path, trajectory::kFileSuffix);
  const std::string fields = attributes.text(kAttrFields);
  std::string error;
  auto parsed = parse_fields(m, fields.empty() ? "qpos qvel ctrl" : fields, &error);
  if (!parsed) return attributes.fail(kAttrFields, error);
  c.fields = std::move(*parsed);
  const auto decimation = attributes.integer(kAttrDecimation, 1, 1000000, 1);
  if (!decimation) return std::nullopt;
  c.decimation = static_cast<int>(*decimation);
  const auto steps = attributes.integer(kAttrEpisodeSteps, 0, LONG_MAX, 0);
  if (!steps) return std::nullopt;
  c.episode_steps = *steps;
  const std::string flush = attributes.text(kAttrFlush);
  const auto sync = trajectory::parse_sync_policy(flush.empty() ? "episode" : flush);
  if (!sync)
    return attributes.fail(kAttrFlush, "must be episode, close or none, got '" + flush + "'");
  c.sync = *sync;
  return c;
}

namespace {

// The header every file of this recorder starts with: the model, the frame layout, the rate.
FileHeader file_header(const mjModel* m, const RecorderConfig& c) {
  FileHeader h;
  h.set_format_version(trajectory::kFormatVersion);
  h.set_model_name(m->names[0] ? m->names : "model");
  h.set_model_hash(plugin::model_hash(m));
  h.set_timestep(m->opt.timestep);
  h.set_decimation(static_cast<uint32_t>(c.decimation));
  h.set_writer(std::string(kPluginName) + " (MuJoCo " + mj_versionString() + ")");
  for (int j = 0; j < m->njnt; ++j) h.add_joint_names(plugin::name_of(m, mjOBJ_JOINT, j));
  for (const auto& f : c.fields) {
    auto* field = h.add_fields();
    field->set_name(f.name);
    field->set_size(static_cast<uint32_t>(f.size));
    for (const auto& n : f.element_names) field->add_element_names(n);
  }
  return h;
}

// What would fail at the first write, refused now (at compile time): an existing file of another
// model or layout, or a path that is a directory where a file is expected. Empty when none.
std::string output_problem(const RecorderConfig& c, const FileHeader& header) {
  std::error_code ec;
  if (!c.directory_mode) {
    if (fs::is_directory(c.path, ec)) return "'" + c.path + "' is a directory";
    try {
      SharedWriter::check_path(c.path, header);
    } catch (const std::exception& e) {
      return std::string("cannot append: ") + e.what();
    }
  } else if (fs::exists(c.path, ec) && !fs::is_directory(c.path, ec)) {
    return "'" + c.path + "' exists and is not a directory (files must end in " +
           trajectory::kFileSuffix + ")";
  }
  return "";
}

}  // namespace

Recorder::Recorder(const mjModel* m, mjData* d, int instance, RecorderConfig config)
    : m_(m),
      d_(d),
      instance_(instance),
      config_(std::move(config)),
      header_(file_header(m, config_)) {
  for (const auto& f : config_.fields) frame_size_ += static_cast<size_t>(f.size);
}

std::unique_ptr<Recorder> Recorder::Create(const mjModel* m, mjData* d, int instance) {
  auto config = RecorderConfig::FromModel(m, instance);
  if (!config) return nullptr;
  std::unique_ptr<Recorder> r(new Recorder(m, d, instance, std::move(*config)));
  if (const std::string problem = output_problem(r->config_, r->header_); !problem.empty()) {
    plugin::Attributes(m, instance, kPluginName).fail(kAttrPath, problem);
    return nullptr;
  }
  // The compiler instantiates plugins and takes one test step on a model whose signature is not
  // set yet (0). That mjData only validates the attributes: it records nothing.
  r->validation_only_ = m->signature == 0;
  r->snap_.assign(1 + m->nq + m->nv + m->na, 0.0);
  r->meta_.episode_id = g_next_episode_id++;
  return r;
}

Recorder::~Recorder() { Flush(); }

int Recorder::frames_in_episode() const {
  return frame_size_ ? static_cast<int>(episode_.data_size() / frame_size_) : 0;
}

void Recorder::Snapshot() {
  double* s = snap_.data();
  s[0] = d_->time;
  std::memcpy(s + 1, d_->qpos, sizeof(double) * m_->nq);
  std::memcpy(s + 1 + m_->nq, d_->qvel, sizeof(double) * m_->nv);
  if (m_->na) std::memcpy(s + 1 + m_->nq + m_->nv, d_->act, sizeof(double) * m_->na);
}

void Recorder::Reset() {
  Flush();
  meta_ = EpisodeMeta{};
  meta_.episode_id = g_next_episode_id++;
  Snapshot();
}

void Recorder::BeginEpisode(const EpisodeMeta& meta) {
  Flush();
  meta_ = meta;
  meta_.explicit_id = true;
  Snapshot();
}

void Recorder::EndEpisode() {
  Flush();
  meta_ = EpisodeMeta{};
  meta_.episode_id = g_next_episode_id++;
}

void Recorder::Compute(const mjModel* m, mjData* d) {
  Snapshot();
  const mjtNum frames = frames_in_episode();
  plugin::fill_sensors(m, d, instance_, &frames, 1);
}

void Recorder::Advance(const mjModel* m, mjData* d) {
  using K = FieldSource::Kind;
  if (step_in_episode_ == 0) episode_start_time_ = snap_[0];
  if (step_in_episode_ % config_.decimation == 0) {
    auto* data = episode_.mutable_data();
    const int base = data->size();
    data->Resize(base + static_cast<int>(frame_size_), 0.0f);
    float* out = data->mutable_data() + base;
    auto put = [&out](const double* src, int n) {
      for (int i = 0; i < n; ++i) *out++ = static_cast<float>(src[i]);
    };
    const double* s = snap_.data();
    for (const auto& f : config_.fields) {
      switch (f.kind) {
        case K::kTime:
          put(s, 1);
          break;
        case K::kQpos:
          put(s + 1, m->nq);
          break;
        case K::kQvel:
          put(s + 1 + m->nq, m->nv);
          break;
        case K::kAct:
          put(s + 1 + m->nq + m->nv, m->na);
          break;
        case K::kCtrl:
          put(d->ctrl, m->nu);
          break;
        case K::kQacc:
          put(d->qacc, m->nv);
          break;
        case K::kSensordata:
          put(d->sensordata, m->nsensordata);
          break;
        case K::kMocapPos:
          put(d->mocap_pos, 3 * m->nmocap);
          break;
        case K::kMocapQuat:
          put(d->mocap_quat, 4 * m->nmocap);
          break;
        case K::kSensor:
          put(d->sensordata + f.index, f.size);
          break;
        case K::kSite:
          put(d->site_xpos + 3 * f.index, 3);
          break;
      }
    }
  }
  ++step_in_episode_;
  Snapshot();  // s_{t+1}: the fallback start of the next frame when sensors are disabled
  if (config_.episode_steps > 0 && step_in_episode_ >= config_.episode_steps) EndEpisode();
}

void Recorder::Flush() {
  const int n = frames_in_episode();
  step_in_episode_ = 0;
  if (n == 0 || validation_only_) {
    episode_.Clear();
    return;
  }
  trajectory::Episode& e = episode_;
  e.set_episode_id(meta_.episode_id);
  e.set_seed(meta_.seed);
  e.set_start_state_id(meta_.start_state_id);
  e.set_branch_id(meta_.branch_id);
  e.set_num_frames(static_cast<uint32_t>(n));
  e.set_start_time(episode_start_time_);
  struct ClearOnExit {
    trajectory::Episode& e;
    ~ClearOnExit() { e.Clear(); }
  } clear_on_exit{e};
  try {
    if (!writer_) {
      if (config_.directory_mode) {
        fs::create_directories(config_.path);
        const std::string shard =
            (fs::path(config_.path) /
             (sanitize(header_.model_name()) + "-" + std::to_string(::getpid()) + "-" +
              std::to_string(g_next_shard++) + trajectory::kFileSuffix))
                .string();
        writer_ = std::make_shared<SharedWriter>(shard, header_, config_.sync);
      } else {
        writer_ = SharedWriter::for_path(config_.path, header_, config_.sync);
      }
    }
    writer_->append(e);
    ++episodes_written_;
  } catch (const std::exception& ex) {
    ++episodes_lost_;
    if (!warned_write_) {
      warned_write_ = true;
      mju_warning("%s: cannot write episode %llu to '%s': %s", kPluginName,
                  static_cast<unsigned long long>(meta_.episode_id), config_.path.c_str(),
                  ex.what());
    }
  }
}

}  // namespace ebm::recorder

namespace {

using ebm::recorder::Recorder;

// Calls fn on every ebm.recorder instance of d; returns how many.
template <typename Fn>
int for_each_recorder(const mjModel* m, mjData* d, Fn fn) {
  return ebm::plugin::for_each_instance<Recorder>(m, d, ebm::recorder::kPluginName, fn);
}

}  // namespace

namespace ebm::recorder {

void RegisterPlugin() {
  mjpPlugin plugin;
  mjp_defaultPlugin(&plugin);
  plugin.name = kPluginName;
  plugin.capabilityflags |= mjPLUGIN_SENSOR;
  plugin.nattribute = sizeof(kAttributes) / sizeof(kAttributes[0]);
  plugin.attributes = kAttributes;
  plugin.nsensordata = +[](const mjModel*, int, int) { return 1; };
  // Position stage: the snapshot of s_t needs no derived quantity, and this stage adds no work
  // (the acceleration stage would force mj_rnePostConstraint on every step).
  plugin.needstage = mjSTAGE_POS;
  plugin::set_instance_lifecycle<Recorder>(plugin);
  plugin.compute = +[](const mjModel* m, mjData* d, int instance, int) {
    if (auto* r = plugin::instance_data<Recorder>(d, instance)) r->Compute(m, d);
  };
  plugin.advance = +[](const mjModel* m, mjData* d, int instance) {
    if (auto* r = plugin::instance_data<Recorder>(d, instance)) r->Advance(m, d);
  };
  mjp_registerPlugin(&plugin);
}

}  // namespace ebm::recorder

extern "C" {

int ebm_recorder_begin_episode(const mjModel* m, mjData* d, uint64_t episode_id, uint64_t seed,
                               uint32_t start_state_id, uint32_t branch_id) {
  ebm::recorder::EpisodeMeta meta;
  meta.episode_id = episode_id;
  meta.seed = seed;
  meta.start_state_id = start_state_id;
  meta.branch_id = branch_id;
  return for_each_recorder(m, d, [&](Recorder* r) { r->BeginEpisode(meta); });
}

int ebm_recorder_end_episode(const mjModel* m, mjData* d) {
  return for_each_recorder(m, d, [](Recorder* r) { r->EndEpisode(); });
}

uint64_t ebm_recorder_episodes_written(const mjModel* m, mjData* d, uint64_t* lost) {
  uint64_t written = 0, lost_sum = 0;
  for_each_recorder(m, d, [&](Recorder* r) {
    written += r->episodes_written();
    lost_sum += r->episodes_lost();
  });
  if (lost) *lost = lost_sum;
  return written;
}

}  // extern "C"
